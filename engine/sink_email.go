package engine

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html"
	"net/mail"
	"slices"
	"strconv"
	"strings"

	"github.com/tally-db/tally/siddhiql"
)

// Email content types.
const (
	EmailTextPlain = "text/plain"
	EmailTextHTML  = "text/html"
)

// Email body mappings (@map(type=...)).
const (
	EmailMapText = "text"
	EmailMapJSON = "json"
)

// EmailSink is what an @sink(type='email') sends for each output of its stream:
//
//	@sink(type='email', to='{{email}}' [, cc='…'] [, bcc='…'] [, subject='Alert {{name}}']
//	      [, content.type='text/plain' | 'text/html']
//	      [, address='alerts@example.com'] [, username='…'] [, password='…']
//	      [, host='smtp.example.com'] [, port='587'] [, ssl.enable='true'] [, auth='true']
//	      [, timeout='10 sec'] [, retry.interval='100 millisec'] [, retry.max.interval='5 sec']
//	      [, @map(type='text' [, @payload("…{{attr}}…")]) | @map(type='json')])
//
// The server options an app leaves out (the real API-M apps name none of them) are the
// node's (tally serve --smtp-*); an empty string or a zero Port is "not given". subject, to,
// cc, bcc and the payload may name the stream's attributes as {{attr}}.
type EmailSink struct {
	Address, Username, Password, Host string
	Port                              int
	// SSL and Auth are "", "true" or "false" (ssl.enable, auth).
	SSL, Auth string
	// ContentType is EmailTextPlain (the default) or EmailTextHTML.
	ContentType string
	// Map is EmailMapText (the default) or EmailMapJSON.
	Map                           string
	Subject, To, Cc, Bcc, Payload Template
}

// Template is option text with {{attr}} placeholders.
type Template struct {
	Text  string
	parts []tmplPart
}

type tmplPart struct {
	lit  string
	attr string // set for a placeholder
}

// parseTemplate reads {{attr}} placeholders in the value of option opt; each must name an
// attribute of the stream.
func parseTemplate(opt, text string, sd *siddhiql.StreamDef) (Template, error) {
	t := Template{Text: text}
	rest := text
	for rest != "" {
		i := strings.Index(rest, "{{")
		if i < 0 {
			t.parts = append(t.parts, tmplPart{lit: rest})
			break
		}
		if i > 0 {
			t.parts = append(t.parts, tmplPart{lit: rest[:i]})
		}
		j := strings.Index(rest[i:], "}}")
		if j < 0 {
			return Template{}, fmt.Errorf("%s has a '{{' without '}}'", opt)
		}
		name := strings.TrimSpace(rest[i+2 : i+j])
		if !slices.ContainsFunc(sd.Attributes, func(a siddhiql.Attribute) bool { return a.Name == name }) {
			return Template{}, fmt.Errorf("%s: {{%s}} is not an attribute of stream %s", opt, name, sd.Name)
		}
		t.parts = append(t.parts, tmplPart{attr: name})
		rest = rest[i+j+2:]
	}
	return t, nil
}

// render replaces the placeholders with the values; esc, when set, escapes each value.
func (t Template) render(vals map[string]string, esc func(string) string) string {
	var b strings.Builder
	for _, p := range t.parts {
		if p.attr == "" {
			b.WriteString(p.lit)
			continue
		}
		v := vals[p.attr]
		if esc != nil {
			v = esc(v)
		}
		b.WriteString(v)
	}
	return b.String()
}

// emailOptions are the options @sink(type='email') takes besides type.
var emailOptions = []string{"username", "address", "password", "host", "port", "ssl.enable", "auth", "content.type",
	"subject", "to", "cc", "bcc", "timeout", "retry.interval", "retry.max.interval"}

// parseEmail reads the options of an @sink(type='email') on stream sd into s.Email.
func parseEmail(s *Sink, an *siddhiql.Annotation, opts map[string]siddhiql.Element, sd *siddhiql.StreamDef) error {
	fail := func(pos siddhiql.Pos, format string, args ...any) error {
		return &siddhiql.Error{Pos: pos, Msg: fmt.Sprintf(format, args...)}
	}
	m := &EmailSink{ContentType: EmailTextPlain, Map: EmailMapText}
	m.Address, m.Username, m.Password, m.Host = opts["address"].Value, opts["username"].Value, opts["password"].Value, opts["host"].Value
	if el, ok := opts["address"]; ok {
		if _, err := mail.ParseAddress(el.Value); err != nil {
			return fail(el.Pos, "address %q is not an email address", el.Value)
		}
	}
	if el, ok := opts["host"]; ok && (el.Value == "" || strings.ContainsAny(el.Value, " /:@\t\r\n")) {
		return fail(el.Pos, "host %q is not a host name or IP address (the port goes in port='…')", el.Value)
	}
	if el, ok := opts["port"]; ok {
		p, err := strconv.Atoi(strings.TrimSpace(el.Value))
		if err != nil || p < 1 || p > 65535 {
			return fail(el.Pos, "port %q is not a port number (1 to 65535)", el.Value)
		}
		m.Port = p
	}
	for _, b := range []struct {
		key string
		dst *string
	}{{"ssl.enable", &m.SSL}, {"auth", &m.Auth}} {
		el, ok := opts[b.key]
		if !ok {
			continue
		}
		v := strings.ToLower(strings.TrimSpace(el.Value))
		if v != "true" && v != "false" {
			return fail(el.Pos, "%s %q is neither 'true' nor 'false'", b.key, el.Value)
		}
		*b.dst = v
	}
	if el, ok := opts["content.type"]; ok {
		ct := strings.ToLower(strings.TrimSpace(el.Value))
		if ct != EmailTextPlain && ct != EmailTextHTML {
			return fail(el.Pos, "content.type %q is not text/plain or text/html", el.Value)
		}
		m.ContentType = ct
	}
	to, ok := opts["to"]
	if !ok || strings.TrimSpace(to.Value) == "" {
		return fail(an.Pos, "@sink(type='email') needs to='address[, address…]' (it may name attributes: to='{{email}}')")
	}
	for _, t := range []struct {
		key string
		dst *Template
	}{{"subject", &m.Subject}, {"to", &m.To}, {"cc", &m.Cc}, {"bcc", &m.Bcc}} {
		el, ok := opts[t.key]
		if !ok {
			continue
		}
		tm, err := parseTemplate(t.key, el.Value, sd)
		if err != nil {
			return fail(el.Pos, "%v", err)
		}
		if t.key != "subject" && len(tm.parts) == 1 && tm.parts[0].attr == "" {
			if _, err := mail.ParseAddressList(el.Value); err != nil {
				return fail(el.Pos, "%s %q is not a comma-separated list of email addresses", t.key, el.Value)
			}
		}
		*t.dst = tm
	}
	for _, ma := range an.Annotations {
		if err := parseEmailMap(m, ma, sd); err != nil {
			return err
		}
	}
	s.Email = m
	return nil
}

// parseEmailMap reads @map(type='text'[, @payload("…")]) or @map(type='json').
func parseEmailMap(m *EmailSink, ma *siddhiql.Annotation, sd *siddhiql.StreamDef) error {
	fail := func(pos siddhiql.Pos, format string, args ...any) error {
		return &siddhiql.Error{Pos: pos, Msg: fmt.Sprintf(format, args...)}
	}
	if !strings.EqualFold(ma.Name, "map") {
		return fail(ma.Pos, "@sink(type='email') takes only @map inside, not @%s", ma.Name)
	}
	for _, el := range ma.Elements {
		if !strings.EqualFold(el.Key, "type") {
			return fail(el.Pos, "@map of an email sink takes only type='text' or type='json', not %s", el.Key)
		}
		switch t := strings.ToLower(el.Value); t {
		case EmailMapText, EmailMapJSON:
			m.Map = t
		default:
			return fail(el.Pos, "@map(type='%s'): an email sink maps with type='text' or type='json'", el.Value)
		}
	}
	for _, p := range ma.Annotations {
		if !strings.EqualFold(p.Name, "payload") || m.Map != EmailMapText {
			return fail(p.Pos, "@map(type='%s') of an email sink takes no @%s (only @map(type='text') takes @payload)", m.Map, p.Name)
		}
		if len(p.Elements) != 1 || (p.Elements[0].Key != "" && !strings.EqualFold(p.Elements[0].Key, "value")) {
			return fail(p.Pos, "@payload takes one text: @payload(\"…{{attr}}…\")")
		}
		tm, err := parseTemplate("@payload", p.Elements[0].Value, sd)
		if err != nil {
			return fail(p.Elements[0].Pos, "%v", err)
		}
		m.Payload = tm
	}
	return nil
}

// key is the email options' part of Sink.Key.
func (m *EmailSink) key() string {
	if m == nil {
		return ""
	}
	return fmt.Sprintf("%q/%q/%q/%q/%d/%s/%s/%s/%s/%q/%q/%q/%q/%q", m.Address, m.Username, m.Password, m.Host, m.Port, m.SSL, m.Auth,
		m.ContentType, m.Map, m.Subject.Text, m.To.Text, m.Cc.Text, m.Bcc.Text, m.Payload.Text)
}

// Mail is one rendered message.
type Mail struct {
	Subject     string
	To, Cc, Bcc []*mail.Address
	ContentType string
	Body        string
}

// Recipients are the envelope recipients: To, Cc and Bcc.
func (m *Mail) Recipients() []string {
	var out []string
	for _, l := range [][]*mail.Address{m.To, m.Cc, m.Bcc} {
		for _, a := range l {
			out = append(out, a.Address)
		}
	}
	return out
}

// Render makes the mail of one output from its attributes as a JSON object (fsm.OutEntry.Data)
// and, for @map(type='json'), its whole JSON form. Values fill the {{attr}} placeholders:
// strings as they are, other values as JSON writes them (null as null); in a text/html
// payload they are HTML-escaped. Without @payload the body is the default text mapping,
// one `name:value` per attribute (strings in double quotes), joined by ",\n". An address
// list that does not parse after rendering, or renders empty for to, is an error.
func (m *EmailSink) Render(data, jsonBody []byte) (Mail, error) {
	vals, err := jsonValues(data)
	if err != nil {
		return Mail{}, err
	}
	out := Mail{ContentType: m.ContentType}
	// A subject is one header line.
	out.Subject = strings.Join(strings.Fields(m.Subject.render(vals, nil)), " ")
	for _, l := range []struct {
		name string
		t    Template
		dst  *[]*mail.Address
	}{{"to", m.To, &out.To}, {"cc", m.Cc, &out.Cc}, {"bcc", m.Bcc, &out.Bcc}} {
		text := strings.TrimSpace(l.t.render(vals, nil))
		if text == "" {
			continue
		}
		list, err := mail.ParseAddressList(text)
		if err != nil {
			return Mail{}, fmt.Errorf("%s %q is not a list of email addresses: %w", l.name, text, err)
		}
		*l.dst = list
	}
	if len(out.To) == 0 {
		return Mail{}, fmt.Errorf("to %q renders no address", m.To.Text)
	}
	switch {
	case m.Map == EmailMapJSON:
		out.Body = string(jsonBody)
	case m.Payload.Text != "":
		var esc func(string) string
		if m.ContentType == EmailTextHTML {
			esc = html.EscapeString
		}
		out.Body = m.Payload.render(vals, esc)
	default:
		out.Body, err = defaultText(data)
		if err != nil {
			return Mail{}, err
		}
	}
	return out, nil
}

// jsonValues reads a flat JSON object into attribute values as text.
func jsonValues(data []byte) (map[string]string, error) {
	vals := map[string]string{}
	err := eachJSONField(data, func(k string, raw json.RawMessage) {
		vals[k] = valueText(raw)
	})
	return vals, err
}

// valueText is a JSON value as a template shows it: strings unquoted, the rest as written.
func valueText(raw json.RawMessage) string {
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return s
		}
	}
	return string(raw)
}

// eachJSONField calls fn for each field of a JSON object, in order.
func eachJSONField(data []byte, fn func(k string, raw json.RawMessage)) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return fmt.Errorf("output data %.40q is not a JSON object", data)
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return fmt.Errorf("read output data: %w", err)
		}
		k, _ := t.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return fmt.Errorf("read output data field %s: %w", k, err)
		}
		fn(k, raw)
	}
	return nil
}

// defaultText is the default text mapping: `name:value` per attribute, strings quoted.
func defaultText(data []byte) (string, error) {
	var b strings.Builder
	err := eachJSONField(data, func(k string, raw json.RawMessage) {
		if b.Len() > 0 {
			b.WriteString(",\n")
		}
		b.WriteString(k)
		b.WriteByte(':')
		b.Write(raw)
	})
	return b.String(), err
}
