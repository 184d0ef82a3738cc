// Package listenerr explains failed listens in the terms of the config.
package listenerr

import (
	"errors"
	"fmt"
	"syscall"
)

// Wrap explains a failed listen, naming the config key that moves the
// port.
func Wrap(key, addr string, err error) error {
	if errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("%s: %s is already in use; set %s to another address", key, addr, key)
	}
	return fmt.Errorf("%s: listen on %s: %w", key, addr, err)
}
