//go:build !linux

package store

import (
	"errors"
	"io/fs"
	"os"
)

// datasync writes f's data: where there is no fdatasync, with everything
// else (on macOS, os.File.Sync asks the drive to flush its cache too).
func datasync(f *os.File) error { return f.Sync() }

// unlinked tells whether f's file is no longer the one at path.
func unlinked(f *os.File, path string) (bool, error) {
	open, err := f.Stat()
	if err != nil {
		return false, err
	}
	now, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	return !os.SameFile(open, now), nil
}
