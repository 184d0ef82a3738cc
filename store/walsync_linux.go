package store

import (
	"os"
	"syscall"
)

// datasync writes f's data, and only the metadata needed to read it back.
func datasync(f *os.File) error { return syscall.Fdatasync(int(f.Fd())) }

// unlinked tells whether f's file has been deleted.
func unlinked(f *os.File, _ string) (bool, error) {
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		return false, err
	}
	return st.Nlink == 0, nil
}
