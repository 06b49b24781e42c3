package vfs

import (
	"time"

	"github.com/taskerfs/taskerfs/meta"
)

// NewCollector returns the daemon's background gc over this filesystem's
// store (see meta.Collector).
func (v *FS) NewCollector(grace time.Duration) *meta.Collector { return v.meta.NewCollector(grace) }
