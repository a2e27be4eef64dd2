package api

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/gatehouse-registry/gatehouse/internal/registry/storage"
)

// storageCodes maps the storage layer's sentinels to catalogue codes.
var storageCodes = []struct {
	err  error
	code Code
}{
	{storage.ErrNameInvalid, CodeNameInvalid},
	{storage.ErrNameUnknown, CodeNameUnknown},
	{storage.ErrBlobUnknown, CodeBlobUnknown},
	{storage.ErrBlobUploadUnknown, CodeBlobUploadUnknown},
	{storage.ErrBlobUploadInvalid, CodeBlobUploadInvalid},
	{storage.ErrDigestInvalid, CodeDigestInvalid},
	{storage.ErrSizeInvalid, CodeSizeInvalid},
	{storage.ErrManifestUnknown, CodeManifestUnknown},
	{storage.ErrManifestInvalid, CodeManifestInvalid},
	{storage.ErrManifestBlobUnknown, CodeManifestBlobUnknown},
	{storage.ErrTagInvalid, CodeTagInvalid},
	{storage.ErrUnsupported, CodeUnsupported},
	{storage.ErrDenied, CodeDenied},
}

// storageError turns a storage error into an API error: the sentinel picks
// the code; a *storage.Error's message and detail, which the storage layer
// keeps client-safe, are passed on. Any other text stays in the log.
func storageError(err error) (*Error, bool) {
	if errors.Is(err, storage.ErrReadOnly) {
		return readOnlyError(err), true
	}
	if errors.Is(err, storage.ErrStorageFull) {
		return &Error{Code: CodeUnknown, Message: "the registry's storage is full", Status: http.StatusInsufficientStorage, Cause: err}, true
	}
	if errors.Is(err, storage.ErrUnavailable) {
		return &Error{Code: CodeUnavailable, Message: "the registry's storage is unavailable; retry later", Cause: err,
			Header: http.Header{"Retry-After": {strconv.Itoa(unavailableRetryAfter)}}}, true
	}
	for _, m := range storageCodes {
		if errors.Is(err, m.err) {
			e := &Error{Code: m.code, Cause: err}
			var se *storage.Error
			if errors.As(err, &se) {
				e.Message, e.Detail = se.Message, se.Detail
			}
			return e, true
		}
	}
	return nil, false
}

// unavailableRetryAfter is the Retry-After, in seconds, of a 503 answered
// because storage could not be reached.
const unavailableRetryAfter = 5

func readOnlyError(cause error) *Error {
	return &Error{Code: CodeUnsupported, Message: "registry is in read-only mode", Status: http.StatusMethodNotAllowed, Cause: cause}
}
