package filesystem

import "syscall"

// syscallENOTDIR: a path component is a file, so the path cannot exist.
var syscallENOTDIR = syscall.ENOTDIR

// noSpace lists the errors of a full disk or an exhausted quota.
var noSpace = []error{syscall.ENOSPC, syscall.EDQUOT}
