package main

import (
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/tally-db/tally/client"
)

// defaultAddr is where the client commands look for a node unless --addr or TALLY_ADDR say
// otherwise.
const defaultAddr = "http://127.0.0.1:7070"

// checkAddr checks a node address given on the command line ("http://host:port", or just
// "host:port") and returns its base URL.
func checkAddr(addr string) (string, error) {
	addr = strings.TrimSpace(addr)
	if addr == "" {
		return "", errors.New("--addr is empty: give a node's HTTP address such as " + defaultAddr)
	}
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	u, err := url.Parse(addr)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("--addr %q is not an HTTP address such as %s", addr, defaultAddr)
	}
	return strings.TrimRight(u.Scheme+"://"+u.Host+u.Path, "/"), nil
}

// newClient returns a client of the node at addr whose requests give up after timeout,
// with the TLS and credentials of opts.
func newClient(addr string, timeout time.Duration, opts client.Options) (*client.Client, error) {
	base, err := checkAddr(addr)
	if err != nil {
		return nil, err
	}
	if timeout <= 0 {
		return nil, fmt.Errorf("--timeout must be positive, got %v", timeout)
	}
	opts.Timeout = timeout
	c, err := client.New([]string{base}, opts)
	if err != nil && opts.CAFile != "" {
		// Everything else was checked above: the CA file is what client.New refused.
		return nil, fmt.Errorf("--ca: %w", err)
	}
	return c, err
}

// refused is a node's refusal as the commands show it: the server's own message and the
// HTTP status, without the method and URL.
type refused struct{ *client.APIError }

func (r refused) Error() string {
	return fmt.Sprintf("%s (HTTP %d %s)", r.Message, r.Status, http.StatusText(r.Status))
}

func (r refused) Unwrap() error { return r.APIError }

// plain returns err, or the node's refusal in it in the commands' short form.
func plain(err error) error {
	var ae *client.APIError
	if errors.As(err, &ae) {
		return refused{ae}
	}
	return err
}

// decodeJSON decodes an answer's JSON body into v.
func decodeJSON(body []byte, v any) error {
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("unexpected answer from the server (%v): %.200s", err, body)
	}
	return nil
}

// clientFlags are the flags every client command takes.
type clientFlags struct {
	addr    string
	timeout time.Duration
	ca      string // PEM file of the CA that signed the nodes' certificates
	user    string // USER:PASSWORD for Basic auth
}

func addClientFlags(fs *flag.FlagSet, cf *clientFlags, timeout time.Duration) {
	addr := os.Getenv("TALLY_ADDR")
	if addr == "" {
		addr = defaultAddr
	}
	fs.StringVar(&cf.addr, "addr", addr, "HTTP address of any node of the cluster, https:// for nodes serving HTTPS (env TALLY_ADDR)")
	fs.DurationVar(&cf.timeout, "timeout", timeout, "give up on a request after this long")
	fs.StringVar(&cf.ca, "ca", os.Getenv("TALLY_CA"), "CA certificate (PEM) that signed the nodes' certificates, to verify https:// nodes (env TALLY_CA; default: the system's roots)")
	fs.StringVar(&cf.user, "user", "", "USER:PASSWORD sent with every request (HTTP Basic auth; env TALLY_USER)")
}

// options returns the client options of the flags: --ca, and --user or TALLY_USER.
func (cf clientFlags) options() (client.Options, error) {
	opts := client.Options{CAFile: cf.ca}
	user := cf.user
	if user == "" {
		user = os.Getenv("TALLY_USER")
	}
	if user != "" {
		var ok bool
		if opts.User, opts.Password, ok = strings.Cut(user, ":"); !ok || opts.User == "" {
			return client.Options{}, errors.New("--user (or TALLY_USER) must be USER:PASSWORD")
		}
	}
	return opts, nil
}

// client returns a client of the node of the flags; logger, when not nil, receives the
// client's retries and reconnections.
func (cf clientFlags) client(logger *slog.Logger) (*client.Client, error) {
	opts, err := cf.options()
	if err != nil {
		return nil, err
	}
	opts.Logger = logger
	return newClient(cf.addr, cf.timeout, opts)
}

// parseArgs parses flags that may come before, between or after the positional arguments
// (`tally query 'from …' --app A` works), and returns the positional arguments. "--" ends
// the flags.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		// fs.Parse stops at the first non-flag argument, or after "--".
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// newFlagSet returns a flag set that prints usage (text, then the flags) to stderr.
func newFlagSet(name, usage string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage); fs.PrintDefaults() }
	return fs
}

// flagExit maps a flag parse error to an exit code: 0 for -h, 2 otherwise.
func flagExit(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	return 2
}

// fail prints a command's error and returns exit code 1.
func fail(stderr io.Writer, cmd string, err error) int {
	fmt.Fprintf(stderr, "tally %s: %v\n", cmd, err)
	var ae *client.APIError
	var ua x509.UnknownAuthorityError
	switch {
	case errors.As(err, &ua):
		fmt.Fprintf(stderr, "tally %s: the node's certificate is not signed by a CA this client trusts: give the cluster's CA with --ca or TALLY_CA.\n", cmd)
	case errors.As(err, &ae):
		if ae.Status == http.StatusUnauthorized {
			fmt.Fprintf(stderr, "tally %s: the node wants credentials: give --user USER:PASSWORD or TALLY_USER.\n", cmd)
		}
	case errors.Is(err, client.ErrUnavailable):
		// No node answered at all.
		fmt.Fprintf(stderr, "tally %s: is a node running there? Set --addr or TALLY_ADDR to a node's HTTP address.\n", cmd)
	}
	return 1
}
