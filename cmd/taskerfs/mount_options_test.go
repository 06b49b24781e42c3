package main

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

func TestApplyMountOptions(t *testing.T) {
	tests := []struct {
		name    string
		options []string
		want    func(f *mountFlags) bool
		kernel  []string
		wantErr string
	}{
		{name: "empty", want: func(f *mountFlags) bool { return !f.allowOther && !f.background }},
		{name: "bool as bare name", options: []string{"allow_other"}, want: func(f *mountFlags) bool { return f.allowOther }},
		{name: "dashes work too", options: []string{"allow-other,debug"}, want: func(f *mountFlags) bool { return f.allowOther && f.debug }},
		{name: "bool with value", options: []string{"allow_other=false"}, want: func(f *mountFlags) bool { return !f.allowOther }},
		{name: "values", options: []string{"max_dirty_bytes=1000,writeback_window=50ms", "cache_bytes=7"},
			want: func(f *mountFlags) bool {
				return f.maxDirty == 1000 && f.window == 50*time.Millisecond && f.cacheBytes == 7
			}},
		{name: "quoted value keeps its comma", options: []string{`metrics="127.0.0.1:9,x",debug`},
			want: func(f *mountFlags) bool { return f.metricsAddr == "127.0.0.1:9,x" && f.debug }},
		{name: "fstab and mount(8) options are ignored",
			options: []string{"defaults,rw,auto,noauto,user,nouser,users,owner,group,nofail,_netdev,x-systemd.automount,x-systemd.requires=a.service,comment=x,noatime,relatime,default_permissions"},
			want:    func(f *mountFlags) bool { return !f.allowOther }},
		{name: "kernel options pass through", options: []string{"ro,nosuid,nodev,noexec", "suid,dev,exec,sync"},
			kernel: []string{"ro", "nosuid", "nodev", "noexec", "suid", "dev", "exec", "sync"}},
		{name: "syslog alias", options: []string{"syslog"}, want: func(f *mountFlags) bool { return f.logTo == "syslog" }},
		{name: "foreground alias", options: []string{"background,foreground"}, want: func(f *mountFlags) bool { return !f.background }},
		{name: "background", options: []string{"background"}, want: func(f *mountFlags) bool { return f.background && f.logTarget() == "file" }},
		{name: "unknown option", options: []string{"allow_other,bogus"}, wantErr: `unknown mount option "bogus"`},
		{name: "data is the source", options: []string{"data=/x"}, wantErr: `unknown mount option "data"`},
		{name: "value missing", options: []string{"cache_bytes"}, wantErr: "needs a value"},
		{name: "bad value", options: []string{"max_queue_age=soon"}, wantErr: "max_queue_age=soon"},
		{name: "kernel option with value", options: []string{"ro=1"}, wantErr: "takes no value"},
		{name: "unterminated quote", options: []string{`metrics="x`}, wantErr: "unterminated quote"},
		{name: "bad log target", options: []string{"log=journal"}, wantErr: "want stderr, file or syslog"},
		{name: "stderr log in background", options: []string{"background,log=stderr"}, wantErr: "cannot be used with --background"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var f mountFlags
			fl := pflag.NewFlagSet("test", pflag.ContinueOnError)
			f.register(fl)
			f.options = tt.options
			err := f.applyOptions(fl)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.want != nil && !tt.want(&f) {
				t.Errorf("flags not as expected: %+v", f)
			}
			if !reflect.DeepEqual(f.kernelOpts, tt.kernel) {
				t.Errorf("kernel options %q, want %q", f.kernelOpts, tt.kernel)
			}
		})
	}
}

func TestUmountHelperArgs(t *testing.T) {
	tests := []struct {
		in      []string
		want    []string
		wantErr string
	}{
		{in: []string{"taskerfs", "mount", "x"}, want: []string{"taskerfs", "mount", "x"}},
		{in: []string{"/sbin/umount.fuse.taskerfs", "/mnt"}, want: []string{"/sbin/umount.fuse.taskerfs", "umount", "/mnt"}},
		{in: []string{"umount.fuse.taskerfs", "/mnt", "-n", "-t", "fuse.taskerfs"}, want: []string{"umount.fuse.taskerfs", "umount", "/mnt"}},
		{in: []string{"umount.taskerfs", "-vl", "/mnt", "-tfuse.taskerfs"}, want: []string{"umount.taskerfs", "umount", "--lazy", "/mnt"}},
		{in: []string{"umount.fuse.taskerfs", "/mnt", "-N", "123"}, wantErr: "namespace"},
		{in: []string{"umount.fuse.taskerfs", "-z", "/mnt"}, wantErr: "unknown option -z"},
	}
	for _, tt := range tests {
		got, err := umountHelperArgs(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%q: error %v, want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%q: got %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestTaskerfsDataDir(t *testing.T) {
	const mountinfo = `22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
40 22 0:40 / /mnt/a rw,nosuid,nodev,relatime shared:20 - fuse.taskerfs /srv/data rw,user_id=0,group_id=0
41 22 0:41 / /mnt/with\040space rw,relatime - fuse.taskerfs /srv/my\040data rw,user_id=0,group_id=0
42 22 0:42 / /mnt/other rw,relatime - fuse.sshfs host:/x rw,user_id=0,group_id=0
43 22 0:43 / /mnt/b rw,relatime - fuse.taskerfs /srv/under rw
44 43 0:44 / /mnt/b rw,relatime - tmpfs tmpfs rw
45 22 0:45 / /mnt/old rw,relatime - fuse.taskerfs taskerfs:/srv/old rw
`
	entries, err := parseMountinfo(strings.NewReader(mountinfo))
	if err != nil {
		t.Fatal(err)
	}
	tests := map[string]string{
		"/mnt/a":          "/srv/data",
		"/mnt/with space": "/srv/my data",
		"/mnt/other":      "", // not taskerfs
		"/mnt/b":          "", // covered by a tmpfs
		"/mnt/old":        "", // source is not a data dir path
		"/mnt/none":       "",
	}
	for mnt, want := range tests {
		if got := taskerfsDataDir(entries, mnt); got != want {
			t.Errorf("%s: data dir %q, want %q", mnt, got, want)
		}
	}
}

func TestFuseConfAllowsOther(t *testing.T) {
	tests := []struct {
		conf string
		want bool
	}{
		{"", false},
		{"#user_allow_other\n", false},
		{"# mount_max = 1000\nuser_allow_other\n", true},
		{"  user_allow_other   # for the shared mount\n", true},
		{"user_allow_other_not\n", false},
		{"mount_max = 10\nuser_allow_other", true},
	}
	for _, tt := range tests {
		if got := fuseConfAllowsOther(strings.NewReader(tt.conf)); got != tt.want {
			t.Errorf("%q: %v, want %v", tt.conf, got, tt.want)
		}
	}
}
