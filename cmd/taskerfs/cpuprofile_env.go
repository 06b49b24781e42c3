package main

import (
	"fmt"
	"os"
	"runtime/pprof"
)

// TASKERFS_CPUPROFILE=FILE writes a CPU profile of the whole command to
// FILE (for the operator verbs: import, reindex, fsck; a mount serves its
// own through the control socket).
func withEnvProfile(run func() error) error {
	path := os.Getenv("TASKERFS_CPUPROFILE")
	if path == "" {
		return run()
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("TASKERFS_CPUPROFILE: %w", err)
	}
	defer f.Close()
	if err := pprof.StartCPUProfile(f); err != nil {
		return fmt.Errorf("TASKERFS_CPUPROFILE: %w", err)
	}
	defer pprof.StopCPUProfile()
	return run()
}
