package main

// command:remote:Command, as pulumi-command 1.2.1 runs it: `create` on create, `update` (or
// `create` again) when an input changes, `delete` on delete; a change of `triggers` replaces
// it. `environment` reaches the command only where sshd accepts it (AcceptEnv), as with the
// real provider, which ignores a refused variable.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"golang.org/x/crypto/ssh"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

func commandTypes() map[string]resourceType {
	return map[string]resourceType{
		"command:remote:Command": {
			replaceOnChange: []string{"triggers"},
			previewOutputs:  []string{"stdout", "stderr"},
			create: func(ctx context.Context, c call, in props) (string, props, error) {
				id := uniqueID(c.urn)
				out := copyProps(in)
				cmd, ok := in["create"].(string)
				if !ok {
					return id, out, nil
				}
				err := runRemote(ctx, c, in, out, cmd, props{})
				return id, out, err
			},
			update: func(ctx context.Context, c call, _ string, olds, news props) (props, error) {
				out := copyProps(news)
				out["stdout"], out["stderr"] = olds["stdout"], olds["stderr"]
				cmd, ok := news["update"].(string)
				if !ok {
					cmd, ok = news["create"].(string)
				}
				if !ok {
					return out, nil
				}
				return out, runRemote(ctx, c, news, out, cmd, olds)
			},
			delete: func(ctx context.Context, c call, _ string, olds props) error {
				cmd, ok := olds["delete"].(string)
				if !ok {
					return nil
				}
				return runRemote(ctx, c, olds, copyProps(olds), cmd, olds)
			},
		},
	}
}

func copyProps(m props) props {
	out := props{}
	for k, v := range m {
		out[k] = v
	}
	return out
}

func uniqueID(urn string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	parts := strings.Split(urn, "::")
	return parts[len(parts)-1] + hex.EncodeToString(b)
}

// runRemote runs cmd over SSH with the resource's connection, environment and stdin, and
// records stdout and stderr in out. prev holds the last outputs (for PULUMI_COMMAND_STDOUT).
func runRemote(ctx context.Context, c call, in, out props, cmd string, prev props) error {
	conn := object(in, "connection")
	if conn == nil {
		return fmt.Errorf("connection is required")
	}
	client, err := dial(ctx, conn)
	if err != nil {
		return err
	}
	defer client.Close()
	session, err := client.NewSession()
	if err != nil {
		return err
	}
	defer session.Close()
	for k, v := range object(in, "environment") {
		if s, ok := v.(string); ok {
			_ = session.Setenv(k, s) // refused unless sshd's AcceptEnv names it, as with the real provider
		}
	}
	if boolean(in, "addPreviousOutputInEnv", true) {
		if s := str(prev, "stdout"); s != "" {
			_ = session.Setenv("PULUMI_COMMAND_STDOUT", s)
		}
		if s := str(prev, "stderr"); s != "" {
			_ = session.Setenv("PULUMI_COMMAND_STDERR", s)
		}
	}
	if s := str(in, "stdin"); s != "" {
		session.Stdin = strings.NewReader(s)
	}
	logging := str(in, "logging")
	if logging == "" {
		logging = "stdoutAndStderr"
	}
	var stdout, stderr, both bytes.Buffer
	var mu sync.Mutex
	lines := func(show bool) (io.Writer, func()) {
		r, w := io.Pipe()
		done := make(chan struct{})
		go func() {
			defer close(done)
			sc := bufio.NewScanner(r)
			sc.Buffer(make([]byte, 64*1024), 1024*1024)
			for sc.Scan() {
				if show && c.log != nil {
					c.log(c.urn, sc.Text())
				}
			}
			_, _ = io.Copy(io.Discard, r)
		}()
		return w, func() { _ = w.Close(); <-done }
	}
	outLog, closeOut := lines(logging == "stdout" || logging == "stdoutAndStderr")
	errLog, closeErr := lines(logging == "stderr" || logging == "stdoutAndStderr")
	session.Stdout = io.MultiWriter(&stdout, lockedWriter{&mu, &both}, outLog)
	session.Stderr = io.MultiWriter(&stderr, lockedWriter{&mu, &both}, errLog)
	runErr := session.Run(cmd)
	closeOut()
	closeErr()
	out["stdout"] = strings.TrimSuffix(stdout.String(), "\n")
	out["stderr"] = strings.TrimSuffix(stderr.String(), "\n")
	if runErr != nil {
		return fmt.Errorf("%w: running %q:\n%s", runErr, cmd, both.String())
	}
	return nil
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func sshConfig(conn props) (*ssh.ClientConfig, string, error) {
	user := str(conn, "user")
	if user == "" {
		user = "root"
	}
	cfg := &ssh.ClientConfig{
		User:            user,
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), // as the real provider does
		Timeout:         time.Duration(num(conn, "perDialTimeout", 15)) * time.Second,
	}
	if key := str(conn, "privateKey"); key != "" {
		var signer ssh.Signer
		var err error
		if pass := str(conn, "privateKeyPassword"); pass != "" {
			signer, err = ssh.ParsePrivateKeyWithPassphrase([]byte(key), []byte(pass))
		} else {
			signer, err = ssh.ParsePrivateKey([]byte(key))
		}
		if err != nil {
			return nil, "", fmt.Errorf("cannot read connection.privateKey: %w", err)
		}
		cfg.Auth = append(cfg.Auth, ssh.PublicKeys(signer))
	}
	if pass := str(conn, "password"); pass != "" {
		cfg.Auth = append(cfg.Auth, ssh.Password(pass))
	}
	port := int(num(conn, "port", 22))
	return cfg, net.JoinHostPort(str(conn, "host"), strconv.Itoa(port)), nil
}

// dial connects directly or through connection.proxy, retrying as the real provider does
// (dialErrorLimit attempts, default 10).
func dial(ctx context.Context, conn props) (*ssh.Client, error) {
	cfg, addr, err := sshConfig(conn)
	if err != nil {
		return nil, err
	}
	limit := int(num(conn, "dialErrorLimit", 10))
	// At least one attempt; a negative limit retries for ever.
	for attempt := 1; ; attempt++ {
		var client *ssh.Client
		var err error
		if proxy := object(conn, "proxy"); proxy != nil {
			client, err = dialVia(proxy, cfg, addr)
		} else {
			client, err = ssh.Dial("tcp", addr, cfg)
		}
		if err == nil {
			return client, nil
		}
		if limit >= 0 && attempt >= limit {
			return nil, fmt.Errorf("failed to dial %s after %d attempts: %w", addr, attempt, err)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Duration(min(attempt, 5)) * time.Second):
		}
	}
}

func dialVia(proxy props, cfg *ssh.ClientConfig, addr string) (*ssh.Client, error) {
	pcfg, paddr, err := sshConfig(proxy)
	if err != nil {
		return nil, err
	}
	jump, err := ssh.Dial("tcp", paddr, pcfg)
	if err != nil {
		return nil, fmt.Errorf("proxy %s: %w", paddr, err)
	}
	raw, err := jump.Dial("tcp", addr)
	if err != nil {
		jump.Close()
		return nil, fmt.Errorf("through proxy %s: %w", paddr, err)
	}
	c, chans, reqs, err := ssh.NewClientConn(raw, addr, cfg)
	if err != nil {
		jump.Close()
		return nil, err
	}
	return ssh.NewClient(c, chans, reqs), nil
}

// engineLog sends a command's output lines to the engine, which shows them under the resource.
func engineLog(addr string) func(urn, msg string) {
	if addr == "" {
		return nil
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil
	}
	engine := pulumirpc.NewEngineClient(conn)
	return func(urn, msg string) {
		_, _ = engine.Log(context.Background(), &pulumirpc.LogRequest{Severity: pulumirpc.LogSeverity_INFO, Message: strings.ToValidUTF8(msg, "?"), Urn: urn})
	}
}
