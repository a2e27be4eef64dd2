package cli

import "testing"

// TestServeDataDirFromEnv: GATEHOUSE_DATA_DIR sets --data-dir's default,
// and the flag still wins.
func TestServeDataDirFromEnv(t *testing.T) {
	tests := []struct {
		name, env string
		args      []string
		want      string
	}{
		{name: "neither", want: "gatehouse-data"},
		{name: "env", env: "/var/lib/gatehouse", want: "/var/lib/gatehouse"},
		{name: "flag wins", env: "/var/lib/gatehouse", args: []string{"--data-dir", "/srv/gh"}, want: "/srv/gh"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(dataDirEnv, tt.env)
			c := newServeCmd()
			if err := c.ParseFlags(tt.args); err != nil {
				t.Fatal(err)
			}
			got, err := c.Flags().GetString("data-dir")
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("--data-dir = %q, want %q", got, tt.want)
			}
		})
	}
}
