package siddhiql

import (
	"strconv"
	"strings"
)

// Redacted replaces a secret wherever app text, URLs and messages are shown.
const Redacted = "***"

// Redact returns the app text with its secrets replaced by "***", for showing it (the
// apps API, logs, errors); the deployed text keeps them. Secrets are the values of sink
// headers (`headers="'Authorization:Bearer x'"` keeps the names), passwords in URLs
// (publisher.url, jdbc.url and any other *.url or url option: `user:***@`, `password=***`),
// and options whose name says they hold one (password, secret, token, key and the like, as
// @store(password='...')). Text that does not lex is returned up to the first error, with
// the rest replaced, so that nothing unread is shown.
func Redact(text string) string {
	lx := &lexer{src: text, line: 1, col: 1}
	var b strings.Builder
	last := 0 // text[:last] is written
	// prev holds the last tokens, to recognise key = 'value' inside an annotation.
	type span struct {
		t          token
		start, end int
	}
	var key []span // the dotted key read so far, when the previous tokens form one
	inAnn := 0     // nesting of annotation parentheses
	var parens []bool
	afterAt := false
	for {
		if err := lx.skipSpace(); err != nil {
			break
		}
		start := lx.off
		t, err := lx.next()
		if err != nil {
			b.WriteString(text[last:start])
			b.WriteString(Redacted)
			return b.String()
		}
		if t.kind == tEOF {
			break
		}
		end := lx.off
		switch {
		case t.kind == tPunct && t.text == "@":
			afterAt = true
			key = nil
			continue
		case t.kind == tPunct && t.text == "(":
			parens = append(parens, afterAt)
			if afterAt {
				inAnn++
			}
			afterAt = false
			key = nil
			continue
		case t.kind == tPunct && t.text == ")":
			if n := len(parens); n > 0 {
				if parens[n-1] {
					inAnn--
				}
				parens = parens[:n-1]
			}
			key = nil
			continue
		}
		if afterAt && !(t.kind == tIdent || (t.kind == tPunct && t.text == ":")) {
			afterAt = false
		}
		if inAnn == 0 || afterAt {
			continue
		}
		switch {
		case t.kind == tIdent:
			if len(key) > 0 && key[len(key)-1].t.kind == tIdent {
				key = nil
			}
			key = append(key, span{t, start, end})
		case t.kind == tPunct && (t.text == "." || t.text == "-" || t.text == ":") && len(key) > 0:
			key = append(key, span{t, start, end})
		case t.kind == tPunct && t.text == "=" && len(key) > 0:
			key = append(key, span{t, start, end})
		case t.kind == tString && len(key) > 1 && key[len(key)-1].t.text == "=":
			var name strings.Builder
			for _, k := range key[:len(key)-1] {
				name.WriteString(k.t.text)
			}
			if v, ok := redactOption(name.String(), t.text); ok {
				quote := text[start]
				b.WriteString(text[last:start])
				b.WriteString(quoteLike(quote, v))
				last = end
			}
			key = nil
		default:
			key = nil
		}
	}
	b.WriteString(text[last:])
	return b.String()
}

// quoteLike writes v as a string literal with the same quote character.
func quoteLike(quote byte, v string) string {
	if quote == '"' {
		return strconv.Quote(v)
	}
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'"
}

// secretWords mark an option whose whole value is a secret.
var secretWords = []string{"password", "passwd", "pwd", "secret", "token", "apikey", "api.key", "api-key", "credential"}

// redactOption returns the shown value of annotation option key='value' and whether it
// differs from value.
func redactOption(key, value string) (string, bool) {
	k := strings.ToLower(key)
	var out string
	switch {
	case k == "headers":
		out = RedactHeaders(value)
	case k == "url" || strings.HasSuffix(k, ".url") || strings.HasSuffix(k, "-url") || strings.HasSuffix(k, ".uri"):
		out = RedactURL(value)
	case isSecretName(k):
		out = Redacted
	default:
		return value, false
	}
	return out, out != value
}

func isSecretName(k string) bool {
	k = strings.ToLower(k)
	for _, w := range secretWords {
		if strings.Contains(k, w) {
			return true
		}
	}
	return false
}

// RedactHeaders replaces every value of a sink's headers option ("'K1:v1','K2:v2'" or
// "K1:v1,K2:v2") with "***", keeping the names.
func RedactHeaders(v string) string {
	items := strings.Split(v, ",")
	for i, item := range items {
		lead := item[:len(item)-len(strings.TrimLeft(item, " \t'"))]
		trail := item[len(strings.TrimRight(item, " \t'")):]
		body := strings.TrimRight(strings.TrimLeft(item, " \t'"), " \t'")
		if body == "" {
			continue
		}
		name, _, ok := strings.Cut(body, ":")
		if !ok {
			name = "" // not Name:value: show nothing of it
		} else {
			name += ":"
		}
		items[i] = lead + name + Redacted + trail
	}
	return strings.Join(items, ",")
}

// RedactURL replaces the password of a URL's user info (scheme://user:pass@host) and the
// values of secret-named query parameters (password=, token=, ...) with "***". It works on
// any text holding URLs (jdbc:mysql://..., a message naming a URL), without parsing it.
func RedactURL(s string) string {
	var b strings.Builder
	rest := s
	for {
		i := strings.Index(rest, "://")
		if i < 0 {
			break
		}
		b.WriteString(rest[:i+3])
		rest = rest[i+3:]
		// The authority ends at the first '/', '?', '#' or space.
		end := strings.IndexAny(rest, "/?# \t\n")
		if end < 0 {
			end = len(rest)
		}
		auth := rest[:end]
		if at := strings.LastIndexByte(auth, '@'); at >= 0 {
			if user, _, ok := strings.Cut(auth[:at], ":"); ok {
				auth = user + ":" + Redacted + auth[at:]
			}
		}
		b.WriteString(auth)
		rest = rest[end:]
	}
	b.WriteString(rest)
	return redactParams(b.String())
}

// redactParams replaces the values of secret-named name=value parameters (after '?', '&'
// or ';') with "***".
func redactParams(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		j := strings.IndexAny(s[i:], "?&;")
		if j < 0 {
			b.WriteString(s[i:])
			break
		}
		j += i + 1
		b.WriteString(s[i:j])
		eq := strings.IndexByte(s[j:], '=')
		stop := strings.IndexAny(s[j:], "&;# \t\n")
		if stop < 0 {
			stop = len(s) - j
		}
		if eq < 0 || eq > stop || !isSecretName(s[j:j+eq]) {
			i = j
			continue
		}
		b.WriteString(s[j : j+eq+1])
		b.WriteString(Redacted)
		i = j + stop
	}
	return b.String()
}
