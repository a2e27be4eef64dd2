// Package api serves the OCI distribution-spec 1.1 / Docker Registry v2 HTTP
// API (/v2/...) over the registry logic in internal/registry/storage.
//
// Handlers have the shape func(w, r) error. One adapter turns the error into
// the spec's {"errors":[...]} body from a single catalogue of codes; what a
// storage layer said is logged, never sent to the client.
package api

import (
	"encoding/json"
	"errors"
	"net/http"
)

// Code is one entry of the OCI error catalogue.
type Code struct {
	Name    string // the spec's code, e.g. BLOB_UNKNOWN
	Message string // the default message sent to clients
	Status  int    // the HTTP status
}

// The error catalogue: the distribution-spec codes plus distribution's.
var (
	CodeBlobUnknown         = Code{"BLOB_UNKNOWN", "blob unknown to registry", http.StatusNotFound}
	CodeBlobUploadInvalid   = Code{"BLOB_UPLOAD_INVALID", "blob upload invalid", http.StatusBadRequest}
	CodeBlobUploadUnknown   = Code{"BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry", http.StatusNotFound}
	CodeDigestInvalid       = Code{"DIGEST_INVALID", "provided digest did not match uploaded content", http.StatusBadRequest}
	CodeManifestBlobUnknown = Code{"MANIFEST_BLOB_UNKNOWN", "manifest references a manifest or blob unknown to registry", http.StatusBadRequest}
	CodeManifestInvalid     = Code{"MANIFEST_INVALID", "manifest invalid", http.StatusBadRequest}
	CodeManifestUnknown     = Code{"MANIFEST_UNKNOWN", "manifest unknown to registry", http.StatusNotFound}
	CodeNameInvalid         = Code{"NAME_INVALID", "invalid repository name", http.StatusBadRequest}
	CodeNameUnknown         = Code{"NAME_UNKNOWN", "repository name not known to registry", http.StatusNotFound}
	CodeSizeInvalid         = Code{"SIZE_INVALID", "provided length did not match content length", http.StatusBadRequest}
	CodeUnauthorized        = Code{"UNAUTHORIZED", "authentication required", http.StatusUnauthorized}
	CodeDenied              = Code{"DENIED", "requested access to the resource is denied", http.StatusForbidden}
	CodeUnsupported         = Code{"UNSUPPORTED", "the operation is unsupported", http.StatusMethodNotAllowed}
	CodeTooManyRequests     = Code{"TOOMANYREQUESTS", "too many requests", http.StatusTooManyRequests}
	CodeRangeInvalid        = Code{"RANGE_INVALID", "invalid content range", http.StatusRequestedRangeNotSatisfiable}
	CodeTagInvalid          = Code{"TAG_INVALID", "manifest tag did not match URI", http.StatusBadRequest}
	CodePaginationInvalid   = Code{"PAGINATION_NUMBER_INVALID", "invalid number of results requested", http.StatusBadRequest}
	CodeUnknown             = Code{"UNKNOWN", "unknown error", http.StatusInternalServerError}
	CodeUnavailable         = Code{"UNAVAILABLE", "service unavailable", http.StatusServiceUnavailable}
	CodeNotFound            = Code{"NOT_FOUND", "no such endpoint", http.StatusNotFound}
)

// Error is an API error: what the client sees (Code, Message, Detail, and
// optionally a different Status) apart from the cause that is only logged.
type Error struct {
	Code    Code
	Message string // overrides Code.Message when set
	Detail  any    // sent as "detail"; must not contain internal error text
	Status  int    // overrides Code.Status when set
	Cause   error  // logged, never sent
	Header  http.Header
}

func (e *Error) Error() string {
	msg := e.Code.Name + ": " + e.message()
	if e.Cause != nil {
		msg += ": " + e.Cause.Error()
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Cause }

func (e *Error) message() string {
	if e.Message != "" {
		return e.Message
	}
	return e.Code.Message
}

func (e *Error) status() int {
	if e.Status != 0 {
		return e.Status
	}
	return e.Code.Status
}

// errorf builds an Error with a code and a client-facing message.
func apiErr(c Code, msg string, detail any) *Error {
	return &Error{Code: c, Message: msg, Detail: detail}
}

// errorBody is the spec's error envelope.
type errorBody struct {
	Errors []errorEntry `json:"errors"`
}

type errorEntry struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Detail  any    `json:"detail,omitempty"`
}

// writeError writes err as the spec's JSON envelope. HEAD responses carry
// the status and no body.
func writeError(w http.ResponseWriter, r *http.Request, e *Error) {
	h := w.Header()
	for k, vs := range e.Header {
		h[k] = vs
	}
	body, _ := json.Marshal(errorBody{Errors: []errorEntry{{Code: e.Code.Name, Message: e.message(), Detail: e.Detail}}})
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Del("Content-Length")
	h.Del("Docker-Content-Digest")
	h.Del("Content-Range")
	h.Del("Accept-Ranges")
	h.Del("ETag")
	h.Del("Content-Encoding")
	status := e.status()
	if r.Method == http.MethodHead {
		w.WriteHeader(status)
		return
	}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// asAPIError maps any error to an *Error. Storage sentinels become their
// spec code; anything else is UNKNOWN with the cause kept for the log.
func asAPIError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	if se, ok := storageError(err); ok {
		return se
	}
	return &Error{Code: CodeUnknown, Cause: err}
}
