package raftnode

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/tally-db/tally/engine"
	"github.com/tally-db/tally/fsm"
)

// SMTP TLS modes (tally serve --smtp-tls).
const (
	// SMTPTLSNone talks plain SMTP, even when the server offers STARTTLS.
	SMTPTLSNone = "none"
	// SMTPStartTLS requires STARTTLS.
	SMTPStartTLS = "starttls"
	// SMTPTLS connects with TLS from the start (SMTPS, port 465).
	SMTPTLS = "tls"
	// smtpStartTLSIfOffered upgrades when the server offers STARTTLS (ssl.enable='false').
	smtpStartTLSIfOffered = "starttls-if-offered"
)

// SMTPConfig is the node's mail server (tally serve --smtp-*), for the email sinks that do
// not name their own: each option an @sink(type='email') leaves out is taken from here.
type SMTPConfig struct {
	Host string
	// Port: 0 means 465 with TLS "tls", 587 with "starttls", else 25.
	Port               int
	Username, Password string
	// From is the sender address of sinks without address='…'.
	From string
	// TLS is SMTPTLSNone, SMTPStartTLS or SMTPTLS; empty means STARTTLS when the server
	// offers it.
	TLS string
	// TLSConfig, when set, is the base TLS configuration (tests trust their own CA with it).
	TLSConfig *tls.Config
}

// ParseSMTPTLS checks a --smtp-tls value.
func ParseSMTPTLS(v string) (string, error) {
	switch v = strings.ToLower(strings.TrimSpace(v)); v {
	case "", SMTPTLSNone, SMTPStartTLS, SMTPTLS:
		return v, nil
	}
	return "", fmt.Errorf("smtp-tls %q: want none, starttls or tls", v)
}

// smtpServer is where and how one email sink sends: the sink's options over the node's.
type smtpServer struct {
	host       string
	port       int
	tls        string
	auth       bool
	user, pass string
	from       string
}

// resolveSMTP merges an email sink's server options with the node's. An app that names its
// host gets Siddhi's defaults for what it leaves out (ssl.enable true, port 465); one that
// does not uses the node's server.
func resolveSMTP(m *engine.EmailSink, node SMTPConfig) smtpServer {
	s := smtpServer{host: node.Host, port: node.Port, tls: node.TLS, user: node.Username, pass: node.Password, from: node.From}
	if m.Host != "" {
		s.host, s.port, s.tls = m.Host, 0, SMTPTLS
	}
	switch m.SSL {
	case "true":
		s.tls = SMTPTLS
	case "false":
		s.tls = smtpStartTLSIfOffered
	}
	if s.tls == "" {
		s.tls = smtpStartTLSIfOffered
	}
	if m.Port != 0 {
		s.port = m.Port
	}
	if s.port == 0 {
		switch s.tls {
		case SMTPTLS:
			s.port = 465
		case SMTPStartTLS:
			s.port = 587
		default:
			s.port = 25
		}
	}
	if m.Username != "" {
		s.user = m.Username
	}
	if m.Password != "" {
		s.pass = m.Password
	}
	s.auth = m.Auth != "false" && s.user != ""
	if m.Address != "" {
		s.from = m.Address
	}
	if s.from == "" && strings.Contains(s.user, "@") {
		s.from = s.user
	}
	return s
}

// emailTransport mails each output over SMTP (net/smtp), one connection per mail, every
// step bounded by the sink's timeout; without a server (the sink names no host and the node
// has no --smtp-host) it logs each mail instead.
type emailTransport struct {
	n    *Node
	sk   engine.Sink
	srv  smtpServer
	base *tls.Config
	lg   *slog.Logger
	buf  []byte
}

func newEmailTransport(n *Node, sk engine.Sink, lg *slog.Logger) *emailTransport {
	t := &emailTransport{n: n, sk: sk, srv: resolveSMTP(sk.Email, n.cfg.SMTP), base: n.cfg.SMTP.TLSConfig, lg: lg}
	if t.srv.host == "" {
		lg.Warn("email sink without an SMTP server (no host option, no --smtp-host): each mail is logged, not sent")
	}
	return t
}

func (t *emailTransport) close() {}

// messageID is the Message-ID of an output's mail: the same on every attempt and leader,
// so that a receiver can drop the duplicates a failover may send.
func (t *emailTransport) messageID(e *fsm.OutEntry) string {
	return "<" + e.Pos.ID(t.n.cfg.Group) + "." + t.sk.Stream + "." + strconv.Itoa(t.sk.Index) + "@tally>"
}

func (t *emailTransport) deliver(ctx context.Context, e *fsm.OutEntry) error {
	var body []byte
	if t.sk.Email.Map == engine.EmailMapJSON {
		t.buf = e.AppendJSON(t.buf[:0], t.n.cfg.Group, t.sk.Stream)
		body = t.buf
	}
	m, err := t.sk.Email.Render(e.Data, body)
	if err != nil {
		return permanentError{fmt.Errorf("render the mail: %w", err)}
	}
	if t.srv.host == "" {
		t.n.logger.Info("mail (no SMTP server: logged, not sent)", "sink", t.sk.String(), "message_id", t.messageID(e),
			"to", strings.Join(m.Recipients(), ","), "subject", m.Subject, "body", m.Body)
		return nil
	}
	from, err := t.sender()
	if err != nil {
		return err
	}
	return t.send(ctx, from.Address, m.Recipients(), t.compose(e, &m, from))
}

// sender is the sink's sender address (address='…', --smtp-from, or a user name that is an
// address).
func (t *emailTransport) sender() (*mail.Address, error) {
	if t.srv.from == "" {
		return nil, errors.New("email sink has no sender: give address='…' or tally serve --smtp-from")
	}
	a, err := mail.ParseAddress(t.srv.from)
	if err != nil {
		return nil, fmt.Errorf("email sink sender %q is not an address: %w", t.srv.from, err)
	}
	return a, nil
}

// compose writes the message: headers (Date is the output's time, so a duplicate is the
// same message), then the body in quoted-printable.
func (t *emailTransport) compose(e *fsm.OutEntry, m *engine.Mail, from *mail.Address) []byte {
	var b bytes.Buffer
	hdr := func(k, v string) { b.WriteString(k + ": " + v + "\r\n") }
	hdr("From", from.String())
	list := func(as []string) string { return strings.Join(as, ", ") }
	var to, cc []string
	for _, a := range m.To {
		to = append(to, a.String())
	}
	for _, a := range m.Cc {
		cc = append(cc, a.String())
	}
	hdr("To", list(to))
	if len(cc) > 0 {
		hdr("Cc", list(cc))
	}
	hdr("Subject", mime.QEncoding.Encode("utf-8", m.Subject))
	hdr("Date", time.UnixMilli(e.Time).UTC().Format(time.RFC1123Z))
	hdr("Message-ID", t.messageID(e))
	hdr("X-Tally-Output-ID", e.Pos.ID(t.n.cfg.Group))
	hdr("MIME-Version", "1.0")
	hdr("Content-Type", m.ContentType+"; charset=utf-8")
	hdr("Content-Transfer-Encoding", "quoted-printable")
	b.WriteString("\r\n")
	qp := quotedprintable.NewWriter(&b)
	qp.Write([]byte(m.Body))
	qp.Close()
	return b.Bytes()
}

// send runs one SMTP transaction. The connection is closed when ctx ends, and every read
// and write has the sink's timeout as a deadline, so a server that hangs costs one timeout.
// 5xx answers to RCPT (every recipient) or to the message are permanentErrors; the rest
// (connection, greeting, STARTTLS, AUTH, MAIL, 4xx) are retried.
func (t *emailTransport) send(ctx context.Context, from string, rcpts []string, msg []byte) (err error) {
	timeout := time.Duration(t.sk.TimeoutMillis) * time.Millisecond
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	addr := net.JoinHostPort(t.srv.host, strconv.Itoa(t.srv.port))
	d := t.n.cfg.SinkPolicy.dialer(t.srv.host)
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("smtp: dial %s: %w", addr, err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	conn.SetDeadline(time.Now().Add(timeout))
	defer func() {
		var ne net.Error
		if err != nil && (ctx.Err() != nil || errors.As(err, &ne) && ne.Timeout()) && !errors.As(err, new(permanentError)) {
			err = fmt.Errorf("smtp %s: no answer within %s: %w", addr, timeout, err)
		}
	}()
	tlsCfg := &tls.Config{ServerName: t.srv.host, MinVersion: tls.VersionTLS12}
	if t.base != nil {
		tlsCfg = t.base.Clone()
		tlsCfg.ServerName = t.srv.host
	}
	if t.srv.tls == SMTPTLS {
		conn = tls.Client(conn, tlsCfg)
	}
	c, err := smtp.NewClient(conn, t.srv.host)
	if err != nil {
		return fmt.Errorf("smtp %s: greeting: %w", addr, err)
	}
	defer c.Close()
	if err := c.Hello(helloName()); err != nil {
		return fmt.Errorf("smtp %s: EHLO: %w", addr, err)
	}
	if t.srv.tls == SMTPStartTLS || t.srv.tls == smtpStartTLSIfOffered {
		if ok, _ := c.Extension("STARTTLS"); ok {
			if err := c.StartTLS(tlsCfg); err != nil {
				return fmt.Errorf("smtp %s: STARTTLS: %w", addr, err)
			}
		} else if t.srv.tls == SMTPStartTLS {
			return fmt.Errorf("smtp %s: the server offers no STARTTLS (--smtp-tls starttls)", addr)
		}
	}
	if t.srv.auth {
		if err := c.Auth(smtp.PlainAuth("", t.srv.user, t.srv.pass, t.srv.host)); err != nil {
			return fmt.Errorf("smtp %s: AUTH as %s: %w", addr, t.srv.user, err)
		}
	}
	if err := c.Mail(from); err != nil {
		return fmt.Errorf("smtp %s: MAIL FROM %s: %w", addr, from, err)
	}
	var refused []error
	for _, r := range rcpts {
		if err := c.Rcpt(r); err != nil {
			if !permanentSMTP(err) {
				return fmt.Errorf("smtp %s: RCPT TO %s: %w", addr, r, err)
			}
			refused = append(refused, fmt.Errorf("RCPT TO %s: %w", r, err))
		}
	}
	if len(refused) == len(rcpts) {
		return permanentError{fmt.Errorf("smtp %s: every recipient refused: %w", addr, errors.Join(refused...))}
	}
	if len(refused) > 0 {
		t.lg.Warn("some recipients refused; the mail goes to the others", "err", errors.Join(refused...))
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("smtp %s: DATA: %w", addr, err)
	}
	if _, err := w.Write(msg); err != nil {
		return fmt.Errorf("smtp %s: send the message: %w", addr, err)
	}
	if err := w.Close(); err != nil {
		err = fmt.Errorf("smtp %s: message refused: %w", addr, err)
		if permanentSMTP(err) {
			return permanentError{err}
		}
		return err
	}
	c.Quit() // the message is accepted: an error here changes nothing
	return nil
}

// permanentSMTP reports whether err is a 5xx SMTP answer.
func permanentSMTP(err error) bool {
	var te *textproto.Error
	return errors.As(err, &te) && te.Code >= 500 && te.Code < 600
}

// helloName is the name this node gives in EHLO: its host name, else localhost.
func helloName() string {
	if h, err := os.Hostname(); err == nil && h != "" && !strings.ContainsAny(h, " \r\n") {
		return h
	}
	return "localhost"
}
