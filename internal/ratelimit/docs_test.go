package ratelimit

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// TestDocumentedDefaults: the operator documentation states the defaults
// this package holds.
func TestDocumentedDefaults(t *testing.T) {
	minutes := int(DefaultWindow / time.Minute)
	tests := []struct {
		name, file, want string
	}{
		{"auth-config account", "auth-config.md", fmt.Sprintf("| `rate_limit.failed_logins_per_account` | integer ≥ 0 | `%d` |", DefaultAccountFailures)},
		{"auth-config ip", "auth-config.md", fmt.Sprintf("| `rate_limit.failed_logins_per_ip` | integer ≥ 0 | `%d` |", DefaultIPFailures)},
		{"auth-config window", "auth-config.md", fmt.Sprintf("| `rate_limit.window` | duration | `%dm` |", minutes)},
		{"security", "security.md", fmt.Sprintf("by default %d per account and %d per IP\n  in %d minutes", DefaultAccountFailures, DefaultIPFailures, minutes)},
		{"auth-server account", "auth-server.md", fmt.Sprintf("`server.rate_limit.failed_logins_per_account` (default %d)", DefaultAccountFailures)},
		{"auth-server ip", "auth-server.md", fmt.Sprintf("`failed_logins_per_ip` (default %d) per `window` (default %d minutes)", DefaultIPFailures, minutes)},
		{"registry htpasswd", "registry-config.md", fmt.Sprintf("%d per user and %d per client\naddress in %d minutes", DefaultAccountFailures, DefaultIPFailures, minutes)},
		{"example config account", "examples/auth_config.yml", fmt.Sprintf("failed_logins_per_account: %d ", DefaultAccountFailures)},
		{"example config ip", "examples/auth_config.yml", fmt.Sprintf("failed_logins_per_ip: %d ", DefaultIPFailures)},
		{"example config window", "examples/auth_config.yml", fmt.Sprintf("window: %dm\n", minutes)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, err := os.ReadFile("../../docs/" + tt.file)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(data), tt.want) {
				t.Errorf("docs/%s does not say %q", tt.file, tt.want)
			}
		})
	}
}
