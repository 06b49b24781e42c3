// Command loopbackperm is go-fuse's loopback filesystem mounted with
// default_permissions: the kernel checks every access against the modes
// the daemon reports, as it does on a taskerfs mount. It is the bench's
// third peer (bench/run.sh). go-fuse's example/loopback adds
// default_permissions only together with allow_other, which an
// unprivileged user may only ask for when /etc/fuse.conf allows it.
//
// Checking permissions in the kernel has a price that a mount without it
// does not pay: every create, unlink, rename or mkdir invalidates the
// directory's attributes in the kernel, and the next path walk through it
// asks the daemon for them again (a GETATTR per such request).
//
//	loopbackperm [-q] MOUNTPOINT ORIGINAL
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

func main() {
	quiet := flag.Bool("q", false, "quiet")
	flag.Parse()
	if flag.NArg() != 2 {
		fmt.Fprintf(os.Stderr, "usage: %s [-q] MOUNTPOINT ORIGINAL\n", os.Args[0])
		os.Exit(2)
	}
	root, err := fs.NewLoopbackRoot(flag.Arg(1))
	if err != nil {
		log.Fatalf("loopback root %s: %v", flag.Arg(1), err)
	}
	// The same timeouts and options as go-fuse's example/loopback, which
	// the bench's other two peers run.
	sec := time.Second
	opts := &fs.Options{
		AttrTimeout:     &sec,
		EntryTimeout:    &sec,
		NullPermissions: true,
		MountOptions: fuse.MountOptions{
			FsName:  flag.Arg(1),
			Name:    "loopback",
			Options: []string{"default_permissions"},
		},
	}
	if !*quiet {
		opts.Logger = log.New(os.Stderr, "", 0)
	}
	server, err := fs.Mount(flag.Arg(0), root, opts)
	if err != nil {
		log.Fatalf("mount %s: %v", flag.Arg(0), err)
	}
	c := make(chan os.Signal, 1)
	signal.Notify(c, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-c
		server.Unmount()
	}()
	server.Wait()
}
