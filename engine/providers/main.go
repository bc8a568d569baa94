// Stand-ins for the command, random and tls resource plugins, for cutover's engine tests.
//
// The real plugins (github.com/pulumi/pulumi-command/provider, pulumi-random/provider/v4,
// pulumi-tls/provider/v5) are not served by the Go module proxy this project builds from.
// This one binary serves the resources the program uses, with the real providers' inputs,
// outputs and lifecycle (what changes replace, what runs on update, partial state on a
// failed command), so that the real engine can run `pulumi up` against the lab's hosts.
// It also answers for Cloudflare's API, as the SDK's mocks do for the clouds (cloudflare.go).
// It is installed under each plugin's name and the version its npm package requests; it
// picks the package from the name it was started as (pulumi-resource-<package>).
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
	"github.com/pulumi/pulumi/sdk/v3/go/common/util/rpcutil"
	"github.com/pulumi/pulumi/sdk/v3/go/common/util/rpcutil/rpcerror"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/structpb"
)

// props are a resource's inputs or outputs as the engine sends them (secrets already
// unwrapped: this provider does not accept secrets, so the engine keeps them marked).
type props = map[string]any

// unknown is the engine's marker for a value not known until the update (previews).
const unknown = plugin.UnknownStringValue

// A resource type this provider serves.
type resourceType struct {
	// defaults fills in what the real provider's Check fills in.
	defaults func(props) props
	// replaceOnChange: inputs whose change replaces the resource ("*" = every input).
	replaceOnChange []string
	create          func(ctx context.Context, c call, inputs props) (id string, outputs props, err error)
	// update is nil where every change replaces.
	update func(ctx context.Context, c call, id string, olds, news props) (props, error)
	delete func(ctx context.Context, c call, id string, olds props) error
	// previewOutputs are the outputs unknown until the resource is created or updated.
	previewOutputs []string
}

// call carries what a step needs besides its inputs: the resource's URN and the engine's log.
type call struct {
	urn string
	log func(urn, msg string)
}

type provider struct {
	pulumirpc.UnimplementedResourceProviderServer
	pkg, version string
	types        map[string]resourceType
	log          func(urn, msg string)
}

func main() {
	pkg := strings.TrimPrefix(filepath.Base(os.Args[0]), "pulumi-resource-")
	packages := map[string]struct {
		version string
		types   map[string]resourceType
	}{
		"command": {"1.2.1", commandTypes()},
		"random":  {"4.21.2", randomTypes()},
		"tls":     {"5.6.1", tlsTypes()},
		// A mock of Cloudflare's API (see cloudflare.go).
		"cloudflare": {"6.22.1", cloudflareTypes()},
	}
	p, ok := packages[pkg]
	if !ok {
		fmt.Fprintf(os.Stderr, "cutover stand-in providers: started as %q; install as pulumi-resource-command, -random, -tls or -cloudflare\n", filepath.Base(os.Args[0]))
		os.Exit(1)
	}
	engine := ""
	if len(os.Args) > 1 {
		engine = os.Args[len(os.Args)-1]
	}
	srv := &provider{pkg: pkg, version: p.version, types: p.types, log: engineLog(engine)}
	handle, err := rpcutil.ServeWithOptions(rpcutil.ServeOptions{
		Init: func(s *grpc.Server) error {
			pulumirpc.RegisterResourceProviderServer(s, srv)
			return nil
		},
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "pulumi-resource-%s: cannot serve: %v\n", pkg, err)
		os.Exit(1)
	}
	fmt.Printf("%d\n", handle.Port)
	if err := <-handle.Done; err != nil {
		fmt.Fprintf(os.Stderr, "pulumi-resource-%s: stopped serving: %v\n", pkg, err)
		os.Exit(1)
	}
}

func (p *provider) typeOf(urn string) (resourceType, string, error) {
	parts := strings.Split(urn, "::")
	token := parts[len(parts)-2]
	if i := strings.LastIndex(token, "$"); i >= 0 {
		token = token[i+1:]
	}
	t, ok := p.types[token]
	if !ok {
		return resourceType{}, token, fmt.Errorf("the cutover stand-in for %s %s does not serve %s", p.pkg, p.version, token)
	}
	return t, token, nil
}

func toProps(s *structpb.Struct) props {
	if s == nil {
		return props{}
	}
	return s.AsMap()
}

func toStruct(m props) (*structpb.Struct, error) {
	clean := props{}
	for k, v := range m {
		if v != nil {
			clean[k] = v
		}
	}
	return structpb.NewStruct(clean)
}

func (p *provider) GetPluginInfo(context.Context, *emptypb.Empty) (*pulumirpc.PluginInfo, error) {
	return &pulumirpc.PluginInfo{Version: p.version}, nil
}

func (p *provider) CheckConfig(_ context.Context, req *pulumirpc.CheckRequest) (*pulumirpc.CheckResponse, error) {
	return &pulumirpc.CheckResponse{Inputs: req.GetNews()}, nil
}

func (p *provider) DiffConfig(context.Context, *pulumirpc.DiffRequest) (*pulumirpc.DiffResponse, error) {
	return &pulumirpc.DiffResponse{Changes: pulumirpc.DiffResponse_DIFF_NONE}, nil
}

func (p *provider) Configure(context.Context, *pulumirpc.ConfigureRequest) (*pulumirpc.ConfigureResponse, error) {
	return &pulumirpc.ConfigureResponse{AcceptSecrets: false, SupportsPreview: true}, nil
}

func (p *provider) Check(_ context.Context, req *pulumirpc.CheckRequest) (*pulumirpc.CheckResponse, error) {
	t, _, err := p.typeOf(req.GetUrn())
	if err != nil {
		return nil, err
	}
	news := toProps(req.GetNews())
	if t.defaults != nil {
		news = t.defaults(news)
	}
	s, err := toStruct(news)
	if err != nil {
		return nil, err
	}
	return &pulumirpc.CheckResponse{Inputs: s}, nil
}

// changedKeys lists the inputs that differ (a value unknown in a preview counts as changed).
func changedKeys(olds, news props) []string {
	keys := map[string]bool{}
	for k := range olds {
		keys[k] = true
	}
	for k := range news {
		keys[k] = true
	}
	var changed []string
	for k := range keys {
		if !reflect.DeepEqual(olds[k], news[k]) {
			changed = append(changed, k)
		}
	}
	sort.Strings(changed)
	return changed
}

func (p *provider) Diff(_ context.Context, req *pulumirpc.DiffRequest) (*pulumirpc.DiffResponse, error) {
	t, _, err := p.typeOf(req.GetUrn())
	if err != nil {
		return nil, err
	}
	olds := toProps(req.GetOldInputs())
	news := toProps(req.GetNews())
	changed := changedKeys(olds, news)
	if len(changed) == 0 {
		return &pulumirpc.DiffResponse{Changes: pulumirpc.DiffResponse_DIFF_NONE}, nil
	}
	var replaces []string
	detailed := map[string]*pulumirpc.PropertyDiff{}
	for _, k := range changed {
		kind := pulumirpc.PropertyDiff_UPDATE
		if t.update == nil || contains(t.replaceOnChange, k) {
			replaces = append(replaces, k)
			kind = pulumirpc.PropertyDiff_UPDATE_REPLACE
		}
		detailed[k] = &pulumirpc.PropertyDiff{Kind: kind, InputDiff: true}
	}
	return &pulumirpc.DiffResponse{
		Changes: pulumirpc.DiffResponse_DIFF_SOME, Diffs: changed, Replaces: replaces,
		DetailedDiff: detailed, HasDetailedDiff: true,
	}, nil
}

func contains(list []string, k string) bool {
	for _, x := range list {
		if x == k || x == "*" {
			return true
		}
	}
	return false
}

func withUnknowns(inputs props, outputs []string) props {
	out := props{}
	for k, v := range inputs {
		out[k] = v
	}
	for _, k := range outputs {
		out[k] = unknown
	}
	return out
}

// failed reports a step that ran and failed: the engine keeps the resource with these
// outputs and its error, and the next update runs it again (as the real providers do).
func failed(id string, outputs props, err error) error {
	s, serr := toStruct(outputs)
	if serr != nil {
		return err
	}
	return rpcerror.WithDetails(rpcerror.New(codes.Unknown, err.Error()),
		&pulumirpc.ErrorResourceInitFailed{Id: id, Properties: s, Reasons: []string{err.Error()}})
}

func (p *provider) Create(ctx context.Context, req *pulumirpc.CreateRequest) (*pulumirpc.CreateResponse, error) {
	t, _, err := p.typeOf(req.GetUrn())
	if err != nil {
		return nil, err
	}
	inputs := toProps(req.GetProperties())
	if req.GetPreview() {
		s, err := toStruct(withUnknowns(inputs, t.previewOutputs))
		return &pulumirpc.CreateResponse{Properties: s}, err
	}
	id, outputs, err := t.create(ctx, call{urn: req.GetUrn(), log: p.log}, inputs)
	if err != nil {
		if outputs != nil {
			return nil, failed(id, outputs, err)
		}
		return nil, err
	}
	s, err := toStruct(outputs)
	return &pulumirpc.CreateResponse{Id: id, Properties: s}, err
}

func (p *provider) Update(ctx context.Context, req *pulumirpc.UpdateRequest) (*pulumirpc.UpdateResponse, error) {
	t, token, err := p.typeOf(req.GetUrn())
	if err != nil {
		return nil, err
	}
	if t.update == nil {
		return nil, fmt.Errorf("%s is replaced on every change, never updated", token)
	}
	news := toProps(req.GetNews())
	if req.GetPreview() {
		s, err := toStruct(withUnknowns(news, t.previewOutputs))
		return &pulumirpc.UpdateResponse{Properties: s}, err
	}
	outputs, err := t.update(ctx, call{urn: req.GetUrn(), log: p.log}, req.GetId(), toProps(req.GetOlds()), news)
	if err != nil {
		if outputs != nil {
			return nil, failed(req.GetId(), outputs, err)
		}
		return nil, err
	}
	s, err := toStruct(outputs)
	return &pulumirpc.UpdateResponse{Properties: s}, err
}

func (p *provider) Delete(ctx context.Context, req *pulumirpc.DeleteRequest) (*emptypb.Empty, error) {
	t, _, err := p.typeOf(req.GetUrn())
	if err != nil {
		return nil, err
	}
	if t.delete != nil {
		if err := t.delete(ctx, call{urn: req.GetUrn(), log: p.log}, req.GetId(), toProps(req.GetProperties())); err != nil {
			return nil, err
		}
	}
	return &emptypb.Empty{}, nil
}

// Read (refresh) returns what the state holds: none of these resources can be read back.
func (p *provider) Read(_ context.Context, req *pulumirpc.ReadRequest) (*pulumirpc.ReadResponse, error) {
	return &pulumirpc.ReadResponse{Id: req.GetId(), Properties: req.GetProperties(), Inputs: req.GetInputs()}, nil
}

func str(m props, k string) string {
	if v, ok := m[k].(string); ok {
		return v
	}
	return ""
}

func num(m props, k string, def float64) float64 {
	if v, ok := m[k].(float64); ok {
		return v
	}
	return def
}

func boolean(m props, k string, def bool) bool {
	if v, ok := m[k].(bool); ok {
		return v
	}
	return def
}

func strs(m props, k string) []string {
	var out []string
	if list, ok := m[k].([]any); ok {
		for _, v := range list {
			if s, ok := v.(string); ok {
				out = append(out, s)
			}
		}
	}
	return out
}

func object(m props, k string) props {
	if v, ok := m[k].(map[string]any); ok {
		return v
	}
	return nil
}
