// Package archtest holds the tests that keep the module's layering: which
// internal package may import which. It has no code of its own; the rules
// are a table in rules_test.go, the checker in check_test.go, and
// layers_test.go runs the checker over the packages of this module.
//
// The layers, top to bottom: cmd, cli, compositions, HTTP packages, typed
// configuration, logic, drivers and caches, contracts (the interfaces and
// types that cross layers), leaf utilities. An import may only point down.
// docs/development.md describes each layer.
package archtest
