package pidproc

import "github.com/dockervisor/dockervisor/errclass"

// ErrNotRunning means the PID file names no running process with the
// expected argument. It is an [errclass.ErrNotFound].
var ErrNotRunning = errclass.New("pidproc: not running", errclass.ErrNotFound)
