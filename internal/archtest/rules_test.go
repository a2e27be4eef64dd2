package archtest

// The layers, top to bottom. An import must point to a lower layer (a larger
// number); an import within one layer is allowed only where a placement
// lists it in sameLayer.
const (
	layerCmd         = iota // the binary's main: builds the command tree
	layerCLI                // commands: flags, files, output
	layerComposition        // typed config -> the parts -> one handler
	layerHTTP               // handlers, routes, challenges, error catalogues
	layerConfig             // file formats -> typed structs, validation
	layerLogic              // authentication, authorization, tokens, registry storage logic
	layerDriver             // storage drivers and caches behind the logic
	layerContract           // interfaces and the types that cross them
	layerLeaf               // utilities that import nothing of ours
)

var layerNames = [...]string{
	layerCmd:         "cmd",
	layerCLI:         "cli",
	layerComposition: "composition",
	layerHTTP:        "http",
	layerConfig:      "config",
	layerLogic:       "logic",
	layerDriver:      "drivers and caches",
	layerContract:    "contracts",
	layerLeaf:        "leaf",
}

// placement puts the packages matching pattern into a layer. A pattern is a
// path relative to the module root; "x/..." matches x and every package
// below it. The most specific pattern (an exact path, else the longest
// "x/...") decides.
type placement struct {
	pattern string
	layer   int
	// sameLayer lists the packages of the same layer this one may import.
	sameLayer []string
	// testOnly packages may be imported from _test.go files only, and
	// from those by packages of any layer.
	testOnly bool
}

// layers places every package under cmd/ and internal/. A package missing
// here fails the test: decide its layer and add it.
var layers = []placement{
	{pattern: "cmd/...", layer: layerCmd},

	{pattern: "internal/cli", layer: layerCLI},

	// internal/authserver's build.go is the auth half's composition; it
	// lives in the HTTP package until it gets a package of its own.
	{pattern: "internal/registry/app", layer: layerComposition},   // the registry's composition: config -> driver -> cache -> auth -> handler
	{pattern: "internal/authserver/app", layer: layerComposition}, // the auth half's lifecycle: chain, listeners, reloads
	{pattern: "internal/bootstrap", layer: layerComposition},
	// doctor is a client of a deployment: it knows the token format and the
	// challenge, nothing of the servers.
	{pattern: "internal/doctor", layer: layerHTTP},

	{pattern: "internal/authserver", layer: layerHTTP},
	{pattern: "internal/registry/api", layer: layerHTTP},

	{pattern: "internal/config/...", layer: layerConfig, sameLayer: []string{"internal/config"}},

	{pattern: "internal/authn/...", layer: layerLogic},
	{pattern: "internal/authz/...", layer: layerLogic},
	{pattern: "internal/token", layer: layerLogic},
	// htpasswd checks passwords with the static users' checker.
	{pattern: "internal/registry/auth", layer: layerLogic, sameLayer: []string{"internal/token", "internal/authn/static"}},
	{pattern: "internal/registry/storage", layer: layerLogic},
	{pattern: "internal/registry/notify", layer: layerLogic}, // webhook events: disk queues and delivery
	{pattern: "internal/registry/health", layer: layerLogic}, // periodic health checks
	// The pull-through cache stores what it fetches through the storage logic.
	{pattern: "internal/registry/proxy", layer: layerLogic, sameLayer: []string{"internal/registry/storage"}},

	{pattern: "internal/registry/storage/driver/...", layer: layerDriver,
		sameLayer: []string{"internal/registry/storage/driver/drivertest"}},
	{pattern: "internal/registry/storage/driver/drivertest", layer: layerDriver, testOnly: true},
	{pattern: "internal/cache/...", layer: layerDriver, sameLayer: []string{"internal/cache"}}, // implementations of the interface in internal/cache
	{pattern: "internal/credcache", layer: layerDriver},
	{pattern: "internal/ratelimit", layer: layerDriver},

	{pattern: "internal/authn", layer: layerContract},                                        // Authenticator, Labels
	{pattern: "internal/authz", layer: layerContract, sameLayer: []string{"internal/authn"}}, // Authorizer; requests carry authn.Labels
	{pattern: "internal/registry/storage/driver", layer: layerContract},                      // Driver

	{pattern: "internal/extprog", layer: layerLeaf},   // runs an external program; shared by authn/ext and authz/ext
	{pattern: "internal/reference", layer: layerLeaf}, // the grammar of repository names, tags, digests and upload ids
	{pattern: "internal/tlsutil", layer: layerLeaf},
	{pattern: "internal/secret", layer: layerLeaf},
	{pattern: "internal/version", layer: layerLeaf},
	{pattern: "internal/server", layer: layerLeaf},
	{pattern: "internal/tools", layer: layerLeaf},
	{pattern: "internal/testenv", layer: layerLeaf, sameLayer: []string{"internal/tools"}, testOnly: true},
	{pattern: "internal/archtest", layer: layerLeaf},
}

// ban forbids imports from packages matching from to packages matching to,
// whatever their layers, unless the imported package matches except or
// sits in one of exceptLayers.
type ban struct {
	name         string
	from, to     string
	except       []string
	exceptLayers []int
	// code only: the ban holds for the non-test files; tests may use
	// the packages it names (to stand up a server to test against).
	codeOnly bool
}

var bans = []ban{
	{
		name: "authentication does not know authorization",
		from: "internal/authn/...", to: "internal/authz/...",
	},
	{
		name: "authorization knows authentication only by its contract",
		from: "internal/authz/...", to: "internal/authn/...",
		// authn.Labels flow from the authenticator into the authorizer.
		except: []string{"internal/authn"},
	},
	{
		name: "logic reads no configuration files: it takes its own options, filled in by a composition",
		from: "internal/authn/...", to: "internal/config/...",
	},
	{
		name: "logic reads no configuration files: it takes its own options, filled in by a composition",
		from: "internal/authz/...", to: "internal/config/...",
	},
	{
		name: "logic reads no configuration files: it takes its own options, filled in by a composition",
		from: "internal/registry/storage/...", to: "internal/config/...",
	},
	{
		name: "logic reads no configuration files: it takes its own options, filled in by a composition",
		from: "internal/registry/proxy", to: "internal/config/...",
	},
	{
		name: "doctor is a client: it knows the token format and TLS, none of the servers",
		from: "internal/doctor", to: "internal/...",
		except:   []string{"internal/secret", "internal/tlsutil", "internal/token"},
		codeOnly: true,
	},
	{
		name: "a storage driver imports only the driver contract and leaf utilities",
		from: "internal/registry/storage/driver/...", to: "internal/...",
		except: []string{
			"internal/registry/storage/driver",
			"internal/registry/storage/driver/drivertest",
		},
		exceptLayers: []int{layerLeaf},
	},
}

// edge is one import: from imports to.
type edge struct{ from, to string }

// knownViolations are imports that break a rule today and are being
// removed. Each entry must still occur in the tree: when the import is gone
// the test fails until its entry is deleted here.
var knownViolations = map[edge]string{}

// externalAllowed names, for packages whose dependencies are kept small on
// purpose, the only modules outside the standard library and this module
// their non-test files may import.
var externalAllowed = map[string][]string{
	// The grammar is a leaf every layer uses.
	"internal/reference": {"github.com/opencontainers/go-digest"},
	// A client of deployments, not of the servers' libraries.
	"internal/doctor": {"github.com/go-jose/go-jose/v4", "golang.org/x/sys/unix"},
}
