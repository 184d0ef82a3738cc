//go:build !unix

package broker

import (
	"os"
	"path/filepath"
)

// lockDir opens dir's lock file; without flock, a second Switchboard on
// the same data_dir is not detected here.
func lockDir(dir string) (*os.File, error) {
	return os.OpenFile(filepath.Join(dir, "LOCK"), os.O_CREATE|os.O_RDWR, 0o600)
}
