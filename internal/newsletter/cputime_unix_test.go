//go:build unix

package newsletter_test

import (
	"syscall"
	"time"
)

// cpuTime is the user and system CPU time the process has used: on a
// shared machine it measures the work a benchmark did, where wall time
// also measures the neighbours.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
