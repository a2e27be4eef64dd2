package doctor

import (
	"encoding/json"
	"fmt"
	"io"
)

// Line formats a result as one line of text: status, check, what was
// seen and, for a failure, the fix.
func Line(res Result) string {
	s := fmt.Sprintf("%-4s  %-9s  %s", res.Status, res.Check, res.Detail)
	if res.Fix != "" {
		s += "; fix: " + res.Fix
	}
	return s
}

// Report is the --json form of a run.
type Report struct {
	Registry string   `json:"registry"`
	OK       bool     `json:"ok"`
	Checks   []Result `json:"checks"`
}

// WriteJSON writes rep as indented JSON.
func WriteJSON(w io.Writer, rep Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}
