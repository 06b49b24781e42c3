// Command taskerfs mounts and maintains a taskerfs data dir.
//
// Each subcommand lives in its own cmd_<name>.go file and registers itself
// on rootCmd from an init function.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

var rootCmd = &cobra.Command{
	Use:           "taskerfs",
	Short:         "A FUSE filesystem for recorded work sessions",
	SilenceUsage:  true,
	SilenceErrors: true,
}

func main() {
	if err := withEnvProfile(rootCmd.Execute); err != nil {
		fmt.Fprintln(os.Stderr, "taskerfs:", err)
		os.Exit(exitCode(err))
	}
}

// exitError carries a specific exit status (fsck damage, partial import).
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func exitCode(err error) int {
	if ee, ok := err.(*exitError); ok {
		return ee.code
	}
	return 1
}
