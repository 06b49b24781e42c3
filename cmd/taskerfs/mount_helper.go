package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// mount(8) mounts type fuse.taskerfs through mount.fuse3, which runs
// `taskerfs DATADIR MOUNTPOINT -o OPTIONS` and waits for it; mount(8) runs
// /sbin/mount.fuse.taskerfs the same way when that link exists, adding
// -t and possibly -n, -s, -v, -f. umount(8) runs /sbin/umount.fuse.taskerfs
// MOUNTPOINT when that link exists, which lets umount wait for the flush.

// helperFlags are the mount(8) helper arguments besides the two paths.
type helperFlags struct {
	options []string
	fsType  string
	fake    bool
	ignored bool // -n, -s, -v: mtab, sloppy, verbose
}

func init() {
	args, err := umountHelperArgs(os.Args)
	if err != nil {
		fmt.Fprintln(os.Stderr, "taskerfs:", err)
		os.Exit(1)
	}
	os.Args = args

	var h helperFlags
	fl := rootCmd.Flags()
	fl.StringArrayVarP(&h.options, "options", "o", nil, "mount options (mount(8) helper form)")
	fl.StringVarP(&h.fsType, "types", "t", "", "filesystem type (mount(8) helper form)")
	fl.BoolVarP(&h.fake, "fake", "f", false, "do everything except the mount (mount(8) helper form)")
	fl.BoolVarP(&h.ignored, "no-mtab", "n", false, "")
	fl.BoolVarP(&h.ignored, "sloppy", "s", false, "")
	fl.BoolVarP(&h.ignored, "verbose", "v", false, "")
	fl.VisitAll(func(f *pflag.Flag) { f.Hidden = true })
	rootCmd.Args = cobra.ArbitraryArgs
	rootCmd.RunE = func(cmd *cobra.Command, args []string) error {
		return runMountHelper(cmd, &h, args)
	}
}

// runMountHelper is `taskerfs DATADIR MOUNTPOINT -o OPTIONS`: a background
// mount with every mount flag given as an option.
func runMountHelper(cmd *cobra.Command, h *helperFlags, args []string) error {
	if len(args) == 0 {
		return cmd.Help()
	}
	if len(args) != 2 {
		return fmt.Errorf("unknown command %q (run `taskerfs --help`)", args[0])
	}
	source, mountpoint := args[0], args[1]
	if st, err := os.Stat(mountpoint); err != nil || !st.IsDir() {
		return fmt.Errorf("unknown command %q, or `taskerfs DATADIR MOUNTPOINT -o OPTIONS` (the mount(8) form) with no directory %s", source, mountpoint)
	}
	if t := strings.TrimPrefix(h.fsType, "fuse."); h.fsType != "" && t != "taskerfs" {
		return fmt.Errorf("filesystem type %q is not taskerfs", h.fsType)
	}
	var f mountFlags
	fl := pflag.NewFlagSet("taskerfs", pflag.ContinueOnError)
	f.register(fl)
	f.options = h.options
	if err := fl.Set("background", "true"); err != nil {
		return err
	}
	if err := f.applyOptions(fl); err != nil {
		return err
	}
	f.data = source
	if h.fake {
		return nil
	}
	return runMount(&f, mountpoint)
}

// umountHelperArgs turns `umount.fuse.taskerfs MOUNTPOINT [-flnrv] [-t
// TYPE]`, as umount(8) calls its helper, into `taskerfs umount [--lazy]
// MOUNTPOINT`; other argument lists are returned unchanged.
func umountHelperArgs(args []string) ([]string, error) {
	if len(args) == 0 {
		return args, nil
	}
	switch filepath.Base(args[0]) {
	case "umount.fuse.taskerfs", "umount.taskerfs":
	default:
		return args, nil
	}
	out := []string{args[0], "umount"}
	var paths []string
	for i := 1; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") || len(a) == 1 {
			paths = append(paths, a)
			continue
		}
	cluster:
		for j := 1; j < len(a); j++ {
			switch a[j] {
			case 'l':
				out = append(out, "--lazy")
			case 't': // the type is ours
				if j == len(a)-1 {
					i++
				}
				break cluster
			case 'N':
				return nil, errors.New("umount -N (another mount namespace) is not supported for taskerfs")
			case 'f', 'n', 'r', 'v', 'i', 'd', 'c':
				// force, no mtab, remount ro on failure, verbose, no
				// helper, free loop, canonical: nothing to do for FUSE
			default:
				return nil, fmt.Errorf("umount helper: unknown option -%c", a[j])
			}
		}
	}
	return append(out, paths...), nil
}
