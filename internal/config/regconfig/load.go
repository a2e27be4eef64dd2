package regconfig

import (
	"fmt"
	"os"
	"reflect"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/gatehouse-registry/gatehouse/internal/config"
	"github.com/gatehouse-registry/gatehouse/internal/secret"
)

// refused names sections Gatehouse reads but does not implement, with why.
var refused = map[string]string{
	"middleware.registry":   "registry middlewares are not supported; remove the section",
	"middleware.repository": "repository middlewares are not supported; remove the section",
	"proxy.exec":            "credential helpers are not supported; give proxy.username and proxy.password",
	"auth.silly":            "the silly access controller accepts any credentials; use auth.htpasswd or auth.token",
	"storage.gcs":           "not supported yet; use filesystem or s3",
	"storage.azure":         "not supported yet; use filesystem or s3",
	"storage.swift":         "removed from distribution 3 and not supported; use filesystem or s3",
	"storage.oss":           "removed from distribution 3 and not supported; use filesystem or s3",
	"http.tls.letsencrypt":  "not supported; give http.tls.certificate and key (gatehouse certs init makes them)",
	"http.h2c":              "not supported; put a TLS terminating proxy in front or use http.tls",
	"log.hooks":             "not supported; ship logs with your log collector",
	"reporting":             "removed from distribution; remove the section",
	"compatibility":         "schema1 manifests are not supported; remove the section",
	"storage.cache.redis":   "put the Redis settings in the top-level redis section",
}

// Load reads and checks the config at path, with REGISTRY_* overrides from
// the process environment.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read registry config: %w", err)
	}
	return Parse(path, data, os.Environ())
}

// Parse decodes data (named file in problems) strictly, applies the
// REGISTRY_* overrides found in env (KEY=VALUE strings, as os.Environ
// returns), fills in defaults and validates the result. Every problem is
// returned at once as a config.Problems; warnings land in Config.Warnings.
func Parse(file string, data []byte, env []string) (*Config, error) {
	cfg := &Config{}
	doc, ps := config.Load(file, data, cfg, refused)
	if doc.Root == nil && len(ps) == 0 {
		doc.Root = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	}
	if doc.Root != nil && doc.Root.Kind == yaml.MappingNode {
		applied, envPs, warnings := applyEnv(doc.Root, env)
		ps = append(ps, envPs...)
		cfg.Warnings = append(cfg.Warnings, warnings...)
		if applied {
			fresh := &Config{Warnings: cfg.Warnings}
			_ = doc.Root.Decode(fresh) // type errors were reported above
			cfg = fresh
		}
	}
	cfg.File = file
	ps = dropDecoderDuplicates(ps)
	if doc.Root == nil || doc.Root.Kind != yaml.MappingNode {
		return cfg, ps.Err()
	}
	ps = append(ps, cfg.validate(doc)...)
	cfg.setDefaults()
	if err := ps.Err(); err != nil {
		return cfg, err
	}
	return cfg, nil
}

const envPrefix = "REGISTRY_"

// envKeys maps REGISTRY_* names to the dotted path and Go type of every
// scalar key the config has.
var envKeys = func() map[string]envKey {
	out := map[string]envKey{}
	var walk func(t reflect.Type, path []string)
	walk = func(t reflect.Type, path []string) {
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct || t == reflect.TypeOf(time.Duration(0)) {
			return
		}
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if !f.IsExported() || name == "" || name == "-" {
				continue
			}
			p := append(append([]string{}, path...), name)
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			switch ft.Kind() {
			case reflect.Struct:
				if ft.NumField() == 0 { // marker sections like storage.inmemory
					continue
				}
				walk(ft, p)
			case reflect.Map, reflect.Slice:
				// lists and maps are not scalar; set them in the file
			default:
				out[envPrefix+strings.ToUpper(strings.Join(p, "_"))] = envKey{path: p, typ: ft}
			}
		}
	}
	walk(reflect.TypeOf(Config{}), nil)
	return out
}()

type envKey struct {
	path []string
	typ  reflect.Type
}

// applyEnv sets the scalar named by each known REGISTRY_* variable in the
// YAML tree, creating sections as needed.
func applyEnv(root *yaml.Node, env []string) (applied bool, ps config.Problems, warnings []string) {
	sorted := append([]string{}, env...)
	sort.Strings(sorted)
	for _, kv := range sorted {
		name, value, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(name, envPrefix) {
			continue
		}
		key, known := envKeys[name]
		if !known {
			warnings = append(warnings, fmt.Sprintf("environment variable %s names no registry config key Gatehouse supports; ignored", name))
			continue
		}
		node := &yaml.Node{Kind: yaml.ScalarNode, Value: value}
		if key.typ.Kind() == reflect.String {
			node.Tag = "!!str"
		}
		// Check the value on its own first, so the problem names the variable.
		probe := reflect.New(key.typ)
		if err := node.Decode(probe.Interface()); err != nil {
			shown := value
			if key.typ == reflect.TypeOf(secret.Secret("")) {
				shown = "***"
			}
			ps = append(ps, config.Problem{File: "environment", Msg: fmt.Sprintf("%s=%q: %s is %s", name, shown, strings.Join(key.path, "."), kindName(key.typ))})
			continue
		}
		setPath(root, key.path, node)
		applied = true
	}
	return applied, ps, warnings
}

func kindName(t reflect.Type) string {
	switch {
	case t == reflect.TypeOf(time.Duration(0)):
		return `a duration such as "30s" or "168h"`
	case t == reflect.TypeOf(ByteSize(0)):
		return `a size such as "20GiB" or "500MB"`
	case t.Kind() == reflect.Bool:
		return "true or false"
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Uint64:
		return "a whole number"
	}
	return "a " + t.Kind().String()
}

func setPath(n *yaml.Node, path []string, value *yaml.Node) {
	for i, part := range path {
		if n.Kind != yaml.MappingNode {
			// A scalar or null where a section should be: replace it.
			*n = yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: n.Line, Column: n.Column}
		}
		var next *yaml.Node
		for j := 0; j+1 < len(n.Content); j += 2 {
			if n.Content[j].Value == part {
				next = n.Content[j+1]
				break
			}
		}
		last := i == len(path)-1
		if next == nil {
			next = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
			n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: part}, next)
		}
		if last {
			*next = *value
			return
		}
		n = next
	}
}

// dropDecoderDuplicates removes the YAML decoder's own "already defined"
// message where the strict loader reported the same duplicate key.
func dropDecoderDuplicates(ps config.Problems) config.Problems {
	dupLines := map[int]bool{}
	for _, p := range ps {
		if strings.HasPrefix(p.Msg, "duplicate key") {
			dupLines[p.Line] = true
		}
	}
	out := ps[:0]
	for _, p := range ps {
		if dupLines[p.Line] && strings.Contains(p.Msg, "already defined") {
			continue
		}
		out = append(out, p)
	}
	return out
}
