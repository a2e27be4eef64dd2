package filesystem

import "syscall"

// syscallENOTDIR: a path component is a file, so the path cannot exist.
var syscallENOTDIR = syscall.ENOTDIR
