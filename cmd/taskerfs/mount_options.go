package main

import (
	"fmt"
	"strings"

	"github.com/spf13/pflag"
)

// mountOption is one name[=value] item of a mount(8) option list.
type mountOption struct {
	name     string
	value    string
	hasValue bool
}

func (o mountOption) String() string {
	if o.hasValue {
		return o.name + "=" + o.value
	}
	return o.name
}

// splitMountOptions splits "a,b=c,d=\"x,y\"" into its items. Double quotes
// protect commas inside a value, as in fstab.
func splitMountOptions(s string) ([]mountOption, error) {
	var out []mountOption
	var cur strings.Builder
	quoted := false
	flush := func() {
		item := cur.String()
		cur.Reset()
		if item == "" {
			return
		}
		name, value, hasValue := strings.Cut(item, "=")
		out = append(out, mountOption{name: name, value: value, hasValue: hasValue})
	}
	for _, r := range s {
		switch {
		case r == '"':
			quoted = !quoted
		case r == ',' && !quoted:
			flush()
		default:
			cur.WriteRune(r)
		}
	}
	if quoted {
		return nil, fmt.Errorf("mount options %q: unterminated quote", s)
	}
	flush()
	return out, nil
}

// ignoredMountOptions are handled by mount(8), fstab or systemd, or are
// what taskerfs does anyway; FUSE filesystems accept and ignore them.
var ignoredMountOptions = map[string]bool{
	"defaults": true, "auto": true, "noauto": true, "user": true, "nouser": true,
	"users": true, "owner": true, "group": true, "nofail": true, "_netdev": true,
	"rw": true, "default_permissions": true, "subtype": true, "fsname": true,
	// taskerfs keeps atime as the kernel reports it; these change nothing.
	"atime": true, "noatime": true, "relatime": true, "norelatime": true,
	"strictatime": true, "nostrictatime": true, "diratime": true, "nodiratime": true,
	"lazytime": true, "nolazytime": true,
}

// kernelMountOptions go to the kernel (or fusermount3) unchanged.
var kernelMountOptions = map[string]bool{
	"ro": true, "suid": true, "nosuid": true, "dev": true, "nodev": true,
	"exec": true, "noexec": true, "sync": true, "async": true, "dirsync": true,
}

// mountOptionAliases are options spelled as other FUSE filesystems do.
var mountOptionAliases = map[string]mountOption{
	"syslog":     {name: "log", value: "syslog", hasValue: true},
	"foreground": {name: "background", value: "false", hasValue: true},
}

// fixedMountFlags cannot be set through -o: the data dir is the mount
// source and -o is the option list itself.
var fixedMountFlags = map[string]bool{"data": true, "options": true, "help": true}

// applyMountOptions sets the flags in fl named by a mount(8) option list
// (allow_other, cache_bytes=1000000: underscores stand for dashes, a bare
// name sets a boolean flag) and returns the options meant for the kernel.
func applyMountOptions(fl *pflag.FlagSet, list string) (kernel []string, err error) {
	opts, err := splitMountOptions(list)
	if err != nil {
		return nil, err
	}
	for _, o := range opts {
		switch {
		case ignoredMountOptions[o.name] || strings.HasPrefix(o.name, "x-") || o.name == "comment":
			continue
		case kernelMountOptions[o.name]:
			if o.hasValue {
				return nil, fmt.Errorf("mount option %s takes no value", o.name)
			}
			kernel = append(kernel, o.name)
			continue
		}
		if alias, ok := mountOptionAliases[o.name]; ok && !o.hasValue {
			o = alias
		}
		name := strings.ReplaceAll(o.name, "_", "-")
		f := fl.Lookup(name)
		if f == nil || fixedMountFlags[name] {
			return nil, fmt.Errorf("unknown mount option %q (see `taskerfs mount --help`; flags are options with _ for -)", o.name)
		}
		value := o.value
		if !o.hasValue {
			if f.NoOptDefVal == "" {
				return nil, fmt.Errorf("mount option %s needs a value: %s=%s", o.name, o.name, f.DefValue)
			}
			value = f.NoOptDefVal
		}
		if err := fl.Set(name, value); err != nil {
			return nil, fmt.Errorf("mount option %s: %w", o, err)
		}
	}
	return kernel, nil
}
