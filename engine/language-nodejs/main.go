// pulumi-language-nodejs for cutover's engine tests.
//
// Pulumi's own Node.js language host (module
// github.com/pulumi/pulumi/sdk/nodejs/cmd/pulumi-language-nodejs/v3) is not served by the
// Go module proxy this project builds from, so this is a small one of our own. It speaks
// the LanguageRuntime gRPC protocol the engine uses and does what the real host does for
// `pulumi preview`, `pulumi up` and `pulumi destroy`: it runs the program through the
// @pulumi/pulumi package's own runner (cmd/run) with the config in PULUMI_CONFIG, and a
// policy pack through cmd/run-policy-pack. Nothing else (about, install, new) is offered.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"

	"github.com/pulumi/pulumi/sdk/v3/go/common/util/rpcutil"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/emptypb"
)

// Version reported to the engine: the Pulumi release whose protocol this host was built against.
const version = "3.274.1"

// The runner exits with this code after it has logged a user-actionable error itself.
const exitAfterLoggedError = 32

func main() {
	// The engine passes its address as the last argument (flags such as -tracing may precede it).
	engine := ""
	if len(os.Args) > 1 {
		engine = os.Args[len(os.Args)-1]
	}
	handle, err := rpcutil.ServeWithOptions(rpcutil.ServeOptions{
		Init: func(srv *grpc.Server) error {
			pulumirpc.RegisterLanguageRuntimeServer(srv, &host{engine: engine})
			return nil
		},
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "pulumi-language-nodejs: cannot serve: %v\n", err)
		os.Exit(1)
	}
	fmt.Printf("%d\n", handle.Port)
	if err := <-handle.Done; err != nil {
		fmt.Fprintf(os.Stderr, "pulumi-language-nodejs: stopped serving: %v\n", err)
		os.Exit(1)
	}
}

type host struct {
	pulumirpc.UnimplementedLanguageRuntimeServer
	engine string
}

func (h *host) GetPluginInfo(context.Context, *emptypb.Empty) (*pulumirpc.PluginInfo, error) {
	return &pulumirpc.PluginInfo{Version: version}, nil
}

// GetRequiredPackages lists the resource plugins the program's node_modules declare
// ("pulumi": {"resource": true}), as the real host does.
func (h *host) GetRequiredPackages(_ context.Context, req *pulumirpc.GetRequiredPackagesRequest) (*pulumirpc.GetRequiredPackagesResponse, error) {
	modules, err := findUp(req.GetInfo().GetProgramDirectory(), "node_modules")
	if err != nil {
		return nil, err
	}
	deps, err := resourcePackages(modules)
	if err != nil {
		return nil, err
	}
	return &pulumirpc.GetRequiredPackagesResponse{Packages: deps}, nil
}

type packageJSON struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Pulumi  struct {
		Resource bool   `json:"resource"`
		Name     string `json:"name"`
		Version  string `json:"version"`
		Server   string `json:"server"`
	} `json:"pulumi"`
}

// resourcePackages reads node_modules/* and node_modules/@scope/* (the layout npm installs).
func resourcePackages(modules string) ([]*pulumirpc.PackageDependency, error) {
	var dirs []string
	entries, err := os.ReadDir(modules)
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		if st, err := os.Stat(filepath.Join(modules, e.Name())); err != nil || !st.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue // .bin, .package-lock.json
		}
		if strings.HasPrefix(e.Name(), "@") {
			scoped, err := os.ReadDir(filepath.Join(modules, e.Name()))
			if err != nil {
				return nil, err
			}
			for _, s := range scoped {
				dirs = append(dirs, filepath.Join(modules, e.Name(), s.Name()))
			}
		} else {
			dirs = append(dirs, filepath.Join(modules, e.Name()))
		}
	}
	var deps []*pulumirpc.PackageDependency
	for _, dir := range dirs {
		raw, err := os.ReadFile(filepath.Join(dir, "package.json"))
		if errors.Is(err, os.ErrNotExist) {
			continue
		} else if err != nil {
			return nil, err
		}
		var p packageJSON
		if err := json.Unmarshal(raw, &p); err != nil {
			return nil, fmt.Errorf("reading %s/package.json: %w", dir, err)
		}
		if !p.Pulumi.Resource {
			continue
		}
		name := p.Pulumi.Name
		if name == "" {
			name = strings.TrimPrefix(strings.TrimPrefix(p.Name, "@pulumi/"), "@")
		}
		v := p.Pulumi.Version
		if v == "" {
			v = p.Version
		}
		deps = append(deps, &pulumirpc.PackageDependency{Name: name, Kind: "resource", Version: "v" + strings.TrimPrefix(v, "v"), Server: p.Pulumi.Server})
	}
	return deps, nil
}

// findUp returns dir/name or the nearest such folder above dir.
func findUp(dir, name string) (string, error) {
	start, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for d := start; ; d = filepath.Dir(d) {
		if st, err := os.Stat(filepath.Join(d, name)); err == nil && st.IsDir() {
			return filepath.Join(d, name), nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no %s folder in %s or above it: run npm ci first", name, start)
		}
	}
}

// runner finds @pulumi/pulumi's cmd/<which> for a program in dir.
func runner(dir, which string) (string, error) {
	modules, err := findUp(dir, "node_modules")
	if err != nil {
		return "", err
	}
	path := filepath.Join(modules, "@pulumi", "pulumi", "cmd", which)
	if _, err := os.Stat(path); err != nil {
		return "", fmt.Errorf("@pulumi/pulumi is not installed in %s: run npm ci first", modules)
	}
	return path, nil
}

// typescriptEnv turns the project's runtime options into the variables the runner reads.
func typescriptEnv(info *pulumirpc.ProgramInfo) []string {
	opts := info.GetOptions().AsMap()
	env := []string{}
	typescript := true
	if v, ok := opts["typescript"].(bool); ok {
		typescript = v
	}
	env = append(env, fmt.Sprintf("PULUMI_NODEJS_TYPESCRIPT=%t", typescript))
	if v, ok := opts["tsconfig"].(string); ok && v != "" {
		env = append(env, "PULUMI_NODEJS_TSCONFIG_PATH="+v)
	}
	if v, ok := opts["transpileOnly"].(bool); ok {
		env = append(env, fmt.Sprintf("PULUMI_NODEJS_TRANSPILE_ONLY=%t", v))
	}
	return env
}

func (h *host) Run(ctx context.Context, req *pulumirpc.RunRequest) (*pulumirpc.RunResponse, error) {
	info := req.GetInfo()
	run, err := runner(info.GetProgramDirectory(), "run")
	if err != nil {
		return &pulumirpc.RunResponse{Error: err.Error()}, nil
	}
	node, err := exec.LookPath("node")
	if err != nil {
		return &pulumirpc.RunResponse{Error: "node is not on the PATH"}, nil
	}
	config, err := json.Marshal(req.GetConfig())
	if err != nil {
		return nil, err
	}
	secretKeys, err := json.Marshal(req.GetConfigSecretKeys())
	if err != nil {
		return nil, err
	}
	args := []string{run, "--monitor", req.GetMonitorAddress(), "--engine", h.engine,
		"--organization", req.GetOrganization(), "--project", req.GetProject(), "--stack", req.GetStack(),
		"--pwd", req.GetPwd(), "--parallel", fmt.Sprint(req.GetParallel()),
		"--root-directory", info.GetRootDirectory()}
	if req.GetDryRun() {
		args = append(args, "--dry-run")
	}
	entry := info.GetEntryPoint()
	if entry == "" {
		entry = "."
	}
	args = append(args, filepath.Join(info.GetProgramDirectory(), entry))
	args = append(args, req.GetArgs()...)

	cmd := exec.CommandContext(ctx, node, args...)
	cmd.Dir = req.GetPwd()
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), "PULUMI_CONFIG="+string(config), "PULUMI_CONFIG_SECRET_KEYS="+string(secretKeys))
	cmd.Env = append(cmd.Env, typescriptEnv(info)...)
	if err := cmd.Run(); err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			if exit.ExitCode() == exitAfterLoggedError {
				return &pulumirpc.RunResponse{Bail: true}, nil
			}
			return &pulumirpc.RunResponse{Error: fmt.Sprintf("Program exited with non-zero exit code: %d", exit.ExitCode())}, nil
		}
		return &pulumirpc.RunResponse{Error: fmt.Sprintf("could not run node: %v", err)}, nil
	}
	return &pulumirpc.RunResponse{}, nil
}

// RunPlugin runs a policy pack (kind "analyzer") written in TypeScript; its stdout carries
// the port it serves on back to the engine.
func (h *host) RunPlugin(req *pulumirpc.RunPluginRequest, stream grpc.ServerStreamingServer[pulumirpc.RunPluginResponse]) error {
	if req.GetKind() != "analyzer" {
		return fmt.Errorf("this language host runs policy packs only, not a %q plugin", req.GetKind())
	}
	info := req.GetInfo()
	run, err := runner(info.GetProgramDirectory(), "run-policy-pack")
	if err != nil {
		return err
	}
	node, err := exec.LookPath("node")
	if err != nil {
		return errors.New("node is not on the PATH")
	}
	args := append([]string{run}, req.GetArgs()...)
	args = append(args, info.GetProgramDirectory())
	cmd := exec.CommandContext(stream.Context(), node, args...)
	cmd.Dir = req.GetPwd()
	cmd.Env = append(req.GetEnv(), typescriptEnv(info)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	var mu sync.Mutex
	send := func(r *pulumirpc.RunPluginResponse) {
		mu.Lock()
		defer mu.Unlock()
		_ = stream.Send(r)
	}
	var wg sync.WaitGroup
	forward := func(from io.Reader, wrap func([]byte) *pulumirpc.RunPluginResponse) {
		defer wg.Done()
		buf := make([]byte, 4096)
		for {
			n, err := from.Read(buf)
			if n > 0 {
				send(wrap(append([]byte(nil), buf[:n]...)))
			}
			if err != nil {
				return
			}
		}
	}
	wg.Add(2)
	go forward(stdout, func(b []byte) *pulumirpc.RunPluginResponse {
		return &pulumirpc.RunPluginResponse{Output: &pulumirpc.RunPluginResponse_Stdout{Stdout: b}}
	})
	go forward(stderr, func(b []byte) *pulumirpc.RunPluginResponse {
		return &pulumirpc.RunPluginResponse{Output: &pulumirpc.RunPluginResponse_Stderr{Stderr: b}}
	})
	wg.Wait()
	code := int32(0)
	if err := cmd.Wait(); err != nil {
		var exit *exec.ExitError
		if !errors.As(err, &exit) {
			return err
		}
		code = int32(exit.ExitCode())
	}
	send(&pulumirpc.RunPluginResponse{Output: &pulumirpc.RunPluginResponse_Exitcode{Exitcode: code}})
	return nil
}
