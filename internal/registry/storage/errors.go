package storage

import (
	"errors"
	"fmt"

	"github.com/gatehouse-registry/gatehouse/internal/registry/storage/driver"
)

// Sentinel errors, errors.Is-able. The HTTP layer maps each to its OCI
// error code; an *Error wrapping one adds a client-safe message and detail.
var (
	ErrNameInvalid         = errors.New("invalid repository name")
	ErrNameUnknown         = errors.New("repository name not known to registry")
	ErrBlobUnknown         = errors.New("blob unknown to registry")
	ErrBlobUploadUnknown   = errors.New("blob upload unknown to registry")
	ErrBlobUploadInvalid   = errors.New("blob upload invalid")
	ErrDigestInvalid       = errors.New("provided digest did not match uploaded content")
	ErrSizeInvalid         = errors.New("provided length did not match content length")
	ErrManifestUnknown     = errors.New("manifest unknown to registry")
	ErrManifestInvalid     = errors.New("manifest invalid")
	ErrManifestBlobUnknown = errors.New("manifest references a manifest or blob unknown to registry")
	ErrTagInvalid          = errors.New("manifest tag did not match URI")
	ErrUnsupported         = errors.New("the operation is unsupported")
	ErrReadOnly            = errors.New("the registry is in read-only mode")
	ErrDenied              = errors.New("requested access to the resource is denied")
)

// ErrStorageFull is wrapped by errors of writes that failed because the
// storage is full (the driver's ErrNoSpace).
var ErrStorageFull = driver.ErrNoSpace

// ErrUnavailable is wrapped by errors of calls that failed because the
// storage could not be reached for now (the driver's ErrUnavailable): the
// client may retry later.
var ErrUnavailable = driver.ErrUnavailable

// ErrUploadUnknown is ErrBlobUploadUnknown under the name used by
// ResumeUpload's documentation.
var ErrUploadUnknown = ErrBlobUploadUnknown

// Error wraps a sentinel with a message and detail that are safe to show a
// client (never a storage path or an internal error's text).
type Error struct {
	Err     error  // one of the sentinels above
	Message string // client-facing message; "" = the sentinel's text
	Detail  any    // client-facing detail (JSON-encodable), may be nil
}

func (e *Error) Error() string {
	if e.Message == "" || e.Message == e.Err.Error() {
		return e.Err.Error()
	}
	return e.Err.Error() + ": " + e.Message
}

// Unwrap returns the sentinel.
func (e *Error) Unwrap() error { return e.Err }

func errorf(sentinel error, detail any, format string, args ...any) error {
	return &Error{Err: sentinel, Message: fmt.Sprintf(format, args...), Detail: detail}
}

// isErr is errors.Is, named for readability at call sites.
func isErr(err, target error) bool { return errors.Is(err, target) }
