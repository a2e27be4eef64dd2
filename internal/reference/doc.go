// Package reference is the one grammar of the names a registry handles:
// repository names (and the token-scope form that may start with a registry
// host), tags, digests and upload ids. The router, the storage layer and the
// token scope parser all check their input here, so a name one of them
// accepts is a name every one of them accepts.
//
// The grammar is distribution's (registry:2), with these limits:
//
//   - A repository name is one or more path components joined by "/", each
//     matching [a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*, at most 255 bytes in
//     all (ValidateRepository). A token scope may put a registry
//     host[:port]/ in front, as in "localhost:5000/team/app"; the 255-byte
//     limit then covers the host too (ValidateScopeName). A component never
//     starts with "_" or ".", so a name can neither climb out of its
//     directory ("..") nor collide with storage's _layers, _manifests,
//     _uploads and _referrers directories.
//   - A tag matches [A-Za-z0-9_][A-Za-z0-9._-]{0,127} (ValidateTag).
//   - A digest is sha256:<64 lower-case hex> or sha512:<128 lower-case hex>
//     (ParseDigest): the two algorithms the OCI image spec registers and the
//     registry can verify. go-digest would also take sha384; the registry's
//     HTTP API never did, and now storage refuses it from clients too.
//   - An upload id matches [A-Za-z0-9][A-Za-z0-9_-]{0,127}
//     (ValidateUploadID). See ValidateUploadID for why.
//
// Every error wraps one of ErrInvalidName, ErrInvalidTag, ErrInvalidDigest
// or ErrInvalidUploadID and is an *Error whose Reason says, in words fit for
// a client, what is wrong; it quotes at most a short piece of the input.
//
// This is a leaf package: it imports the standard library and go-digest
// only.
package reference
