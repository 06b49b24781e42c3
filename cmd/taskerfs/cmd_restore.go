package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/taskerfs/taskerfs/meta"
)

// restore works through the mount with ordinary renames, so the kernel and
// the daemon apply the caller's permissions as for a plain `mv`.

var backupSuffix = regexp.MustCompile(`\.~[0-9]+~$`)

// trashOrigin splits a path inside MOUNT/.trash/<hour>/ into the mount
// root and the original path below it.
func trashOrigin(abs string) (root, orig string, ok bool) {
	sep := string(filepath.Separator) + meta.TrashDirName + string(filepath.Separator)
	i := strings.LastIndex(abs, sep)
	if i < 0 {
		return "", "", false
	}
	root = abs[:i]
	if root == "" {
		root = "/"
	}
	rest := abs[i+len(sep):]
	hour, below, found := strings.Cut(rest, string(filepath.Separator))
	if _, err := time.Parse(meta.TrashHourLayout, hour); err != nil || !found || below == "" {
		return "", "", false
	}
	return root, backupSuffix.ReplaceAllString(below, ""), true
}

// mountRootOf finds the taskerfs mount holding abs: the nearest ancestor
// with a .trash directory.
func mountRootOf(abs string) (string, error) {
	for d := filepath.Dir(abs); ; d = filepath.Dir(d) {
		if st, err := os.Stat(filepath.Join(d, meta.TrashDirName)); err == nil && st.IsDir() {
			return d, nil
		}
		if d == "/" || d == "." {
			return "", fmt.Errorf("%s is not inside a taskerfs mount with a trash", abs)
		}
	}
}

// newestTrashed finds the most recently trashed version of orig (a path
// relative to the mount root): every .trash/<hour>/orig and orig.~N~,
// newest ctime first.
func newestTrashed(root, orig string) (string, error) {
	hours, err := os.ReadDir(filepath.Join(root, meta.TrashDirName))
	if err != nil {
		return "", err
	}
	var best string
	var bestTime int64
	for _, h := range hours {
		dir := filepath.Join(root, meta.TrashDirName, h.Name(), filepath.Dir(orig))
		ents, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		base := filepath.Base(orig)
		for _, e := range ents {
			if e.Name() != base && backupSuffix.ReplaceAllString(e.Name(), "") != base {
				continue
			}
			var st syscall.Stat_t
			p := filepath.Join(dir, e.Name())
			if err := syscall.Lstat(p, &st); err != nil {
				continue
			}
			if t := st.Ctim.Nano(); best == "" || t > bestTime {
				best, bestTime = p, t
			}
		}
	}
	if best == "" {
		return "", fmt.Errorf("no trashed version of %s", orig)
	}
	return best, nil
}

func init() {
	var to string
	var force bool
	c := &cobra.Command{
		Use:   "restore PATH",
		Short: "Move a trashed file back to where it was (PATH in MOUNT/.trash/, or the original path for its newest version)",
		Long: `restore moves a version out of MOUNT/.trash/ back to its original path (or --to).
PATH is either a path inside MOUNT/.trash/<YYYY-MM-DD-HH>/ or the original path
of a deleted or overwritten file, which restores its most recently trashed version.
Directories restore whole. A file that exists at the destination is kept unless
--force (it then goes to the trash in turn). Plain mv and cp out of .trash work too.`,
		Example: `  taskerfs restore MOUNT/sessions/abc/metadata.json
  taskerfs restore MOUNT/.trash/2026-12-02-05/sessions/abc
  taskerfs restore --to MOUNT/sessions/abc/old.json MOUNT/.trash/2026-12-02-05/sessions/abc/metadata.json.~1~`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			abs, err := filepath.Abs(args[0])
			if err != nil {
				return err
			}
			src := abs
			root, orig, inTrash := trashOrigin(abs)
			if !inTrash {
				if root, err = mountRootOf(abs); err != nil {
					return err
				}
				if orig, err = filepath.Rel(root, abs); err != nil {
					return err
				}
				if src, err = newestTrashed(root, orig); err != nil {
					return err
				}
			}
			dst := filepath.Join(root, orig)
			if to != "" {
				if dst, err = filepath.Abs(to); err != nil {
					return err
				}
			}
			if _, err := os.Lstat(dst); err == nil && !force {
				return fmt.Errorf("%s exists (use --force to replace it, or --to)", dst)
			} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				return err
			}
			if err := os.Rename(src, dst); err != nil {
				return err
			}
			fmt.Printf("restored %s -> %s\n", src, dst)
			return nil
		},
	}
	c.Flags().StringVar(&to, "to", "", "restore to this path instead of the original one")
	c.Flags().BoolVar(&force, "force", false, "replace an existing file at the destination")
	rootCmd.AddCommand(c)
}
