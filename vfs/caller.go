package vfs

import (
	"bytes"
	"os"
	"runtime"
	"strconv"
)

// mkdirSyscalls are the syscall numbers of mkdir(2) and mkdirat(2).
var mkdirSyscalls = map[string][]int{
	"amd64": {83, 258},
	"386":   {39, 296},
	"arm64": {34},
	"arm":   {39, 323},
}

// inMkdir reports whether the thread behind the request is inside
// mkdir(2), read from /proc/<tid>/syscall. False when that cannot be known.
func (c *Ctx) inMkdir() bool {
	if c.Pid == 0 {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.FormatUint(uint64(c.Pid), 10) + "/syscall")
	if err != nil {
		return false
	}
	field, _, _ := bytes.Cut(b, []byte(" "))
	nr, err := strconv.Atoi(string(bytes.TrimSpace(field)))
	if err != nil {
		return false
	}
	for _, m := range mkdirSyscalls[runtime.GOARCH] {
		if nr == m {
			return true
		}
	}
	return false
}
