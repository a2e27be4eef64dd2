package static

import (
	"testing"
)

// TestValidateAgreesWithNew: Validate refuses exactly what New refuses,
// with the same text.
func TestValidateAgreesWithNew(t *testing.T) {
	good := hash(t, "pw")
	cases := map[string]Users{
		"valid":             {"alice": {Password: good}, "": {}},
		"empty":             {},
		"every user listed": {"a": {}, "b": {Password: "x"}, "": {Password: good}, "c": {Password: good[:10]}},
	}
	for name, users := range cases {
		t.Run(name, func(t *testing.T) {
			verr := users.Validate()
			_, nerr := New(users)
			if (verr == nil) != (nerr == nil) || verr != nil && verr.Error() != nerr.Error() {
				t.Fatalf("Validate: %v\nNew: %v", verr, nerr)
			}
		})
	}
}
