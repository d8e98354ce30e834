package raftnode

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"syscall"

	"github.com/tally-db/tally/engine"
	"github.com/tally-db/tally/siddhiql"
)

// ErrAppRefused: this node's configuration does not allow the app (a sink target outside
// --sink-allow or a link-local one, a shard ID longer than SHARD_ID's field.length). The
// message names the rule; nothing was proposed.
var ErrAppRefused = errors.New("raftnode: app refused")

// SinkPolicy says which hosts http sinks and email sinks' SMTP servers may reach. Link-local addresses (169.254.0.0/16,
// fe80::/10: cloud metadata services) are always refused; with rules, only the hosts they
// allow are reached. The zero SinkPolicy has no rules. Safe for concurrent use.
type SinkPolicy struct {
	hosts []string       // lower-case names and literal IPs
	nets  []netip.Prefix // CIDRs
	rules []string       // as given, for messages
}

// ParseSinkPolicy reads --sink-allow rules: a host name (matched exactly, ignoring case), an
// IP address or a CIDR (10.0.0.0/8, fd00::/8). A malformed rule is an error naming it.
func ParseSinkPolicy(rules []string) (*SinkPolicy, error) {
	p := &SinkPolicy{}
	for _, r := range rules {
		r = strings.TrimSpace(r)
		switch {
		case r == "":
			continue
		case strings.Contains(r, "/"):
			pfx, err := netip.ParsePrefix(r)
			if err != nil {
				return nil, fmt.Errorf("sink-allow %q: not a CIDR such as 10.0.0.0/8: %w", r, err)
			}
			p.nets = append(p.nets, pfx.Masked())
		default:
			h := strings.ToLower(strings.Trim(r, "[]"))
			if _, err := netip.ParseAddr(h); err != nil && !validHost(h) {
				return nil, fmt.Errorf("sink-allow %q: not a host name, IP address or CIDR", r)
			}
			p.hosts = append(p.hosts, h)
		}
		p.rules = append(p.rules, r)
	}
	return p, nil
}

func validHost(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for _, c := range h {
		if !(c == '.' || c == '-' || c == '_' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// Rules are the rules as given.
func (p *SinkPolicy) Rules() []string {
	if p == nil {
		return nil
	}
	return p.rules
}

// linkLocal reports whether a is link-local (unicast or multicast), IPv4-mapped included.
func linkLocal(a netip.Addr) bool {
	a = a.Unmap()
	return a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast()
}

// CheckURL is the deploy-time check of an http sink's publisher.url: a link-local literal
// IP is refused; with rules, the host must be an allowed name, or a literal IP that an
// address rule or CIDR covers. Names are resolved only when they are dialed (checkDial).
// The error wraps ErrAppRefused and names the URL (its password hidden) and the rules.
func (p *SinkPolicy) CheckURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%w: sink URL %s: %w", ErrAppRefused, siddhiql.RedactURL(raw), err)
	}
	host := strings.ToLower(u.Hostname())
	addr, isIP := parseIP(host)
	if isIP && linkLocal(addr) {
		return fmt.Errorf("%w: sink URL %s targets the link-local address %s: link-local addresses (169.254.0.0/16, fe80::/10) are never allowed",
			ErrAppRefused, siddhiql.RedactURL(raw), addr)
	}
	if p == nil || len(p.rules) == 0 || p.allowName(host) || (isIP && p.allowIP(addr)) {
		return nil
	}
	return fmt.Errorf("%w: sink URL %s: host %s is not allowed by --sink-allow %s",
		ErrAppRefused, siddhiql.RedactURL(raw), host, strings.Join(p.rules, ","))
}

func parseIP(host string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(strings.Trim(host, "[]"))
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap().WithZone(""), true
}

func (p *SinkPolicy) allowName(host string) bool {
	for _, h := range p.hosts {
		if h == host {
			return true
		}
	}
	return false
}

func (p *SinkPolicy) allowIP(a netip.Addr) bool {
	for _, h := range p.hosts {
		if b, ok := parseIP(h); ok && b == a {
			return true
		}
	}
	for _, n := range p.nets {
		if n.Contains(a) {
			return true
		}
	}
	return false
}

// checkDial is the delivery-time check of the address a sink connection is about to reach
// (after DNS, so a name that resolves somewhere else than at deploy cannot get around it):
// never link-local; with rules, the URL's host was allowed by name or the address is
// allowed.
func (p *SinkPolicy) checkDial(host string, address string) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("sink dial to %s: %w", address, err)
	}
	a := ap.Addr().Unmap().WithZone("")
	if linkLocal(a) {
		return fmt.Errorf("sink host %s resolves to the link-local address %s, which sinks never reach", host, a)
	}
	if p == nil || len(p.rules) == 0 || p.allowName(strings.ToLower(host)) || p.allowIP(a) {
		return nil
	}
	return fmt.Errorf("sink host %s resolves to %s, which --sink-allow %s does not allow", host, a, strings.Join(p.rules, ","))
}

// dialer is a net.Dialer whose Control refuses what checkDial refuses, for sink
// connections to the URL host host.
func (p *SinkPolicy) dialer(host string) *net.Dialer {
	return &net.Dialer{Control: func(_, address string, _ syscall.RawConn) error {
		return p.checkDial(host, address)
	}}
}

// CheckHost is the deploy-time check of an email sink's SMTP host, as CheckURL checks an
// http sink's URL host.
func (p *SinkPolicy) CheckHost(host string) error {
	host = strings.ToLower(host)
	addr, isIP := parseIP(host)
	if isIP && linkLocal(addr) {
		return fmt.Errorf("%w: SMTP host %s is link-local: link-local addresses (169.254.0.0/16, fe80::/10) are never allowed", ErrAppRefused, addr)
	}
	if p == nil || len(p.rules) == 0 || p.allowName(host) || (isIP && p.allowIP(addr)) {
		return nil
	}
	return fmt.Errorf("%w: SMTP host %s is not allowed by --sink-allow %s", ErrAppRefused, host, strings.Join(p.rules, ","))
}

// checkSinks checks every http sink of app, and every email sink that names its SMTP host,
// against the node's sink policy.
func (n *Node) checkSinks(app *engine.App) error {
	for _, s := range app.Sinks() {
		var err error
		switch {
		case s.Type == engine.SinkHTTP:
			err = n.cfg.SinkPolicy.CheckURL(s.URL)
		case s.Type == engine.SinkEmail && s.Email.Host != "":
			err = n.cfg.SinkPolicy.CheckHost(s.Email.Host)
		}
		if err != nil {
			return fmt.Errorf("%w (%s at %s)", err, s.String(), s.Pos)
		}
	}
	return nil
}

// dialContext is for a sink's transport: it dials with the policy's checks.
func (p *SinkPolicy) dialContext(host string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	d := p.dialer(host)
	return d.DialContext
}
