package raftnode

import (
	"bufio"
	"crypto/tls"
	"encoding/base64"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// smtpMessage is one message a smtpTestServer accepted.
type smtpMessage struct {
	From string
	To   []string
	Data string // as received, dot-unstuffed, CRLF line ends
	TLS  bool   // received over TLS
}

// header returns the value of the message's header name ("" when absent).
func (m smtpMessage) header(name string) string {
	head, _, _ := strings.Cut(m.Data, "\r\n\r\n")
	for line := range strings.SplitSeq(head, "\r\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(k, name) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// body is the message's body (after the blank line).
func (m smtpMessage) body() string {
	_, b, _ := strings.Cut(m.Data, "\r\n\r\n")
	return b
}

// smtpTestServer is a throwaway SMTP server on 127.0.0.1 that speaks enough for net/smtp
// (EHLO, AUTH PLAIN, MAIL, RCPT, DATA, RSET, NOOP, QUIT) and records the messages it
// accepts. It can be told to answer RCPT or the end of DATA with a code, to refuse one
// recipient, or to hang (greet nobody).
type smtpTestServer struct {
	t  *testing.T
	ln net.Listener
	// user and pass, when set, are required (AUTH PLAIN).
	user, pass string
	// tls, when set, is offered with STARTTLS, or from the first byte when implicit.
	tls      *tls.Config
	implicit bool

	rcptCode   atomic.Value // string: answer to RCPT ("" accepts)
	dataCode   atomic.Value // string: answer at the end of DATA ("" accepts)
	refuseRcpt atomic.Value // string: a recipient answered 550
	hang       atomic.Bool  // accept connections and say nothing

	mu    sync.Mutex
	msgs  []smtpMessage
	conns int
	wg    sync.WaitGroup
	open  map[net.Conn]bool
}

// newSMTPTestServer starts a server; opts set its fields (user, pass, tls) before it
// accepts.
func newSMTPTestServer(t *testing.T, opts ...func(*smtpTestServer)) *smtpTestServer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &smtpTestServer{t: t, ln: ln, open: map[net.Conn]bool{}}
	for _, o := range opts {
		o(s)
	}
	s.rcptCode.Store("")
	s.dataCode.Store("")
	s.refuseRcpt.Store("")
	s.wg.Add(1)
	go s.accept()
	t.Cleanup(s.close)
	return s
}

// port is the server's port.
func (s *smtpTestServer) port() int { return s.ln.Addr().(*net.TCPAddr).Port }

func (s *smtpTestServer) close() {
	s.ln.Close()
	s.mu.Lock()
	for c := range s.open {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// messages returns a copy of the accepted messages, in arrival order.
func (s *smtpTestServer) messages() []smtpMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]smtpMessage(nil), s.msgs...)
}

func (s *smtpTestServer) connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns
}

func (s *smtpTestServer) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns++
		s.open[c] = true
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer func() {
				c.Close()
				s.mu.Lock()
				delete(s.open, c)
				s.mu.Unlock()
			}()
			if s.hang.Load() {
				buf := make([]byte, 1)
				c.Read(buf) // until the client gives up or the server closes
				return
			}
			if s.tls != nil && s.implicit {
				c = tls.Server(c, s.tls)
			}
			s.session(c)
		}()
	}
}

func (s *smtpTestServer) session(c net.Conn) {
	r := bufio.NewReader(c)
	_, secure := c.(*tls.Conn)
	say := func(line string) bool {
		_, err := c.Write([]byte(line + "\r\n"))
		return err == nil
	}
	if !say("220 tally-test ESMTP") {
		return
	}
	var cur smtpMessage
	authed := s.user == ""
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		verb, arg, _ := strings.Cut(line, " ")
		switch strings.ToUpper(verb) {
		case "EHLO":
			say("250-tally-test")
			if s.tls != nil && !secure {
				say("250-STARTTLS")
			}
			if s.user != "" {
				say("250-AUTH PLAIN")
			}
			say("250 8BITMIME")
		case "STARTTLS":
			if s.tls == nil || secure {
				say("502 no STARTTLS here")
				continue
			}
			say("220 go ahead")
			c = tls.Server(c, s.tls)
			r = bufio.NewReader(c)
			secure = true
		case "HELO":
			say("250 tally-test")
		case "AUTH":
			mech, resp, _ := strings.Cut(arg, " ")
			b, err := base64.StdEncoding.DecodeString(resp)
			parts := strings.Split(string(b), "\x00")
			if !strings.EqualFold(mech, "PLAIN") || err != nil || len(parts) != 3 || parts[1] != s.user || parts[2] != s.pass {
				say("535 5.7.8 authentication failed")
				continue
			}
			authed = true
			say("235 2.7.0 authenticated")
		case "MAIL":
			if !authed {
				say("530 5.7.0 authentication required")
				continue
			}
			cur = smtpMessage{From: angle(arg)}
			say("250 ok")
		case "RCPT":
			to := angle(arg)
			if code := s.rcptCode.Load().(string); code != "" {
				say(code + " recipient not accepted now")
				continue
			}
			if to == s.refuseRcpt.Load().(string) {
				say("550 5.1.1 no such user")
				continue
			}
			cur.To = append(cur.To, to)
			say("250 ok")
		case "DATA":
			say("354 go ahead")
			var b strings.Builder
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
				b.WriteString(strings.TrimPrefix(l, "."))
			}
			if code := s.dataCode.Load().(string); code != "" {
				say(code + " message not accepted")
				continue
			}
			cur.Data, cur.TLS = b.String(), secure
			s.mu.Lock()
			s.msgs = append(s.msgs, cur)
			s.mu.Unlock()
			say("250 queued")
		case "RSET", "NOOP":
			say("250 ok")
		case "QUIT":
			say("221 bye")
			return
		default:
			say("502 command not implemented")
		}
	}
}

// angle is the address between < and > in a MAIL or RCPT argument.
func angle(arg string) string {
	_, rest, _ := strings.Cut(arg, "<")
	addr, _, _ := strings.Cut(rest, ">")
	return addr
}
