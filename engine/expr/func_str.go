package expr

import (
	"regexp"
	"strings"
	"unicode/utf16"

	"github.com/tally-db/tally/siddhiql"
)

// The str: functions of siddhi-execution-string, and regex:matches. Lengths and indexes
// count UTF-16 code units, as Java strings do. Regular expressions are Go's RE2 syntax,
// which agrees with Java's for the common constructs (no backreferences or lookaround).
// Where Siddhi's function throws for a null argument (and drops the event), Tally answers
// null.
func init() {
	register("str:concat", fn{min: 2, max: -1, build: buildConcat})
	register("str:length", fn{min: 1, max: 1, build: func(c *siddhiql.Call, args []*Compiled, _ *Env) (*Compiled, error) {
		a := args[0].Eval
		return result(siddhiql.TypeInt, func(r Row) Value {
			v := a(r)
			if v.IsNull() {
				return Null
			}
			return Int(int32(utf16Len(javaString(v))))
		})
	}})
	register("str:substr", fn{min: 2, max: 3, build: buildSubstr})
	register("str:contains", fn{min: 2, max: 2, build: func(c *siddhiql.Call, args []*Compiled, _ *Env) (*Compiled, error) {
		if err := strArgs(c, args, 0, 1); err != nil {
			return nil, err
		}
		a, b := args[0].Eval, args[1].Eval
		return result(siddhiql.TypeBool, func(r Row) Value {
			x, y := a(r), b(r)
			if x.IsNull() {
				return Bool(false)
			}
			if y.IsNull() {
				return Null
			}
			return Bool(strings.Contains(x.S, y.S))
		})
	}})
	register("str:upper", fn{min: 1, max: 1, build: strMap(strings.ToUpper)})
	register("str:lower", fn{min: 1, max: 1, build: strMap(strings.ToLower)})
	register("str:trim", fn{min: 1, max: 1, build: strMap(javaTrim)})
	register("str:reverse", fn{min: 1, max: 1, build: strMap(func(s string) string {
		u := utf16.Encode([]rune(s))
		for i, j := 0, len(u)-1; i < j; i, j = i+1, j-1 {
			u[i], u[j] = u[j], u[i]
		}
		return string(utf16.Decode(u))
	})})
	register("str:equalsIgnoreCase", fn{min: 2, max: 2, build: func(c *siddhiql.Call, args []*Compiled, _ *Env) (*Compiled, error) {
		if err := strArgs(c, args, 0, 1); err != nil {
			return nil, err
		}
		a, b := args[0].Eval, args[1].Eval
		return result(siddhiql.TypeBool, func(r Row) Value {
			x, y := a(r), b(r)
			if x.IsNull() {
				return Null
			}
			return Bool(!y.IsNull() && strings.EqualFold(x.S, y.S))
		})
	}})
	register("str:replaceAll", fn{min: 3, max: 3, build: func(c *siddhiql.Call, args []*Compiled, _ *Env) (*Compiled, error) {
		return buildReplace(c, args, true)
	}})
	register("str:replaceFirst", fn{min: 3, max: 3, build: func(c *siddhiql.Call, args []*Compiled, _ *Env) (*Compiled, error) {
		return buildReplace(c, args, false)
	}})
	register("str:split", fn{min: 3, max: 3, build: buildSplit})
	register("str:regexp", fn{min: 2, max: 2, build: func(c *siddhiql.Call, args []*Compiled, _ *Env) (*Compiled, error) {
		return buildMatches(c, args, 0, 1)
	}})
	register("regex:matches", fn{min: 2, max: 2, build: func(c *siddhiql.Call, args []*Compiled, _ *Env) (*Compiled, error) {
		return buildMatches(c, args, 1, 0)
	}})
}

func strArgs(c *siddhiql.Call, args []*Compiled, idx ...int) error {
	for _, i := range idx {
		if err := needType(c, args, i, siddhiql.TypeString); err != nil {
			return err
		}
	}
	return nil
}

func strMap(f func(string) string) func(*siddhiql.Call, []*Compiled, *Env) (*Compiled, error) {
	return func(c *siddhiql.Call, args []*Compiled, _ *Env) (*Compiled, error) {
		if err := strArgs(c, args, 0); err != nil {
			return nil, err
		}
		return result(siddhiql.TypeString, str1(args, func(s string) Value { return String(f(s)) }))
	}
}

// javaTrim drops the characters up to ' ' from both ends, as Java's String.trim.
func javaTrim(s string) string {
	return strings.TrimFunc(s, func(r rune) bool { return r <= ' ' })
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

func utf16Len(s string) int {
	if isASCII(s) {
		return len(s)
	}
	n := 0
	for _, r := range s {
		n += utf16.RuneLen(r)
	}
	return n
}

// utf16Slice is Java's s.substring(begin, end) (end < 0: to the end); ok is false where
// Java throws StringIndexOutOfBoundsException.
func utf16Slice(s string, begin, end int) (string, bool) {
	if isASCII(s) {
		if end < 0 {
			end = len(s)
		}
		if begin < 0 || end > len(s) || begin > end {
			return "", false
		}
		return s[begin:end], true
	}
	u := utf16.Encode([]rune(s))
	if end < 0 {
		end = len(u)
	}
	if begin < 0 || end > len(u) || begin > end {
		return "", false
	}
	return string(utf16.Decode(u[begin:end])), true
}

func buildConcat(c *siddhiql.Call, args []*Compiled, _ *Env) (*Compiled, error) {
	evs := make([]Eval, len(args))
	for i, a := range args {
		evs[i] = a.Eval
	}
	return result(siddhiql.TypeString, func(r Row) Value {
		var b strings.Builder
		for _, e := range evs {
			if v := e(r); !v.IsNull() {
				b.WriteString(javaString(v))
			}
		}
		return String(b.String())
	})
}

// compileRegexp compiles argument i when it is a constant; a nil *Regexp means the
// pattern is only known per event.
func compileRegexp(c *siddhiql.Call, args []*Compiled, i int, wrap func(string) string) (*regexp.Regexp, error) {
	if !args[i].Const {
		return nil, nil
	}
	v := args[i].Eval(nil)
	if v.IsNull() {
		return nil, Errorf(c.Args[i], "argument %d of %s() (a regular expression) must not be null", i+1, callName(c))
	}
	re, err := regexp.Compile(wrap(v.S))
	if err != nil {
		return nil, Errorf(c.Args[i], "%s(): bad regular expression %q: %v", callName(c), v.S, err)
	}
	return re, nil
}

func keep(s string) string { return s }

// dynRegexp returns re, or compiles pattern when re is nil (nil when it does not compile).
func dynRegexp(re *regexp.Regexp, pattern string, wrap func(string) string) *regexp.Regexp {
	if re != nil {
		return re
	}
	re, err := regexp.Compile(wrap(pattern))
	if err != nil {
		return nil
	}
	return re
}

// buildSubstr is str:substr(s, begin[, length]) or str:substr(s, regex[, group]).
func buildSubstr(c *siddhiql.Call, args []*Compiled, _ *Env) (*Compiled, error) {
	if err := strArgs(c, args, 0); err != nil {
		return nil, err
	}
	if err := needType(c, args, 1, siddhiql.TypeInt, siddhiql.TypeString); err != nil {
		return nil, err
	}
	if len(args) == 3 {
		if err := needType(c, args, 2, siddhiql.TypeInt); err != nil {
			return nil, err
		}
	}
	src, a1 := args[0].Eval, args[1].Eval
	var a2 Eval
	if len(args) == 3 {
		a2 = args[2].Eval
	}
	if args[1].Type == siddhiql.TypeInt {
		return result(siddhiql.TypeString, func(r Row) Value {
			s, b := src(r), a1(r)
			if s.IsNull() || b.IsNull() {
				return Null
			}
			end := -1
			if a2 != nil {
				n := a2(r)
				if n.IsNull() {
					return Null
				}
				end = int(b.I + n.I)
			}
			out, ok := utf16Slice(s.S, int(b.I), end)
			if !ok {
				return Null
			}
			return String(out)
		})
	}
	re, err := compileRegexp(c, args, 1, keep)
	if err != nil {
		return nil, err
	}
	return result(siddhiql.TypeString, func(r Row) Value {
		s, p := src(r), a1(r)
		if s.IsNull() || p.IsNull() {
			return Null
		}
		rx := dynRegexp(re, p.S, keep)
		if rx == nil {
			return Null
		}
		group := 0
		if a2 != nil {
			g := a2(r)
			if g.IsNull() {
				return Null
			}
			group = int(g.I)
		}
		m := rx.FindStringSubmatchIndex(s.S)
		if m == nil {
			return String("")
		}
		if group < 0 || 2*group+1 >= len(m) {
			return Null
		}
		if m[2*group] < 0 {
			return Null
		}
		return String(s.S[m[2*group]:m[2*group+1]])
	})
}

func anchored(s string) string { return `^(?:` + s + `)$` }

// buildMatches is a whole-string regular expression match; src and pat are the indexes
// of the string and the pattern.
func buildMatches(c *siddhiql.Call, args []*Compiled, src, pat int) (*Compiled, error) {
	if err := strArgs(c, args, 0, 1); err != nil {
		return nil, err
	}
	re, err := compileRegexp(c, args, pat, anchored)
	if err != nil {
		return nil, err
	}
	s, p := args[src].Eval, args[pat].Eval
	return result(siddhiql.TypeBool, func(r Row) Value {
		x, y := s(r), p(r)
		if x.IsNull() || y.IsNull() {
			return Null
		}
		rx := dynRegexp(re, y.S, anchored)
		if rx == nil {
			return Null
		}
		return Bool(rx.MatchString(x.S))
	})
}

func buildReplace(c *siddhiql.Call, args []*Compiled, all bool) (*Compiled, error) {
	if err := strArgs(c, args, 0, 1, 2); err != nil {
		return nil, err
	}
	re, err := compileRegexp(c, args, 1, keep)
	if err != nil {
		return nil, err
	}
	s, p, rep := args[0].Eval, args[1].Eval, args[2].Eval
	return result(siddhiql.TypeString, func(r Row) Value {
		x, y, z := s(r), p(r), rep(r)
		if x.IsNull() || y.IsNull() || z.IsNull() {
			return Null
		}
		rx := dynRegexp(re, y.S, keep)
		if rx == nil {
			return Null
		}
		tmpl, ok := javaReplacement(z.S)
		if !ok {
			return Null
		}
		if all && replaceTooLong(rx, x.S, tmpl) {
			return Null
		}
		if all {
			return String(rx.ReplaceAllString(x.S, tmpl))
		}
		loc := rx.FindStringSubmatchIndex(x.S)
		if loc == nil {
			return x
		}
		out := rx.ExpandString(nil, tmpl, x.S, loc)
		return String(x.S[:loc[0]] + string(out) + x.S[loc[1]:])
	})
}

// maxReplaceGrowth bounds how much longer than its input str:replaceAll may make a string:
// a replacement repeated at every match of a long string could take minutes and
// gigabytes on every replica. A result that could grow more answers null.
const maxReplaceGrowth = 4 << 20

// replaceTooLong reports whether replacing every match of rx in s by tmpl could grow s by
// more than maxReplaceGrowth: the template's own text at every match, plus each group
// reference expanding to at most all of s over all matches (they do not overlap).
func replaceTooLong(rx *regexp.Regexp, s, tmpl string) bool {
	refs := strings.Count(tmpl, "$")
	if len(s)*refs+(len(s)+1)*len(tmpl) <= maxReplaceGrowth {
		return false // even a match at every position stays within the bound
	}
	room := maxReplaceGrowth - len(s)*refs
	if room < 0 {
		return true
	}
	// Count matches only as far as the bound allows: past it the answer is known.
	limit := room/len(tmpl) + 1
	return len(rx.FindAllStringIndex(s, limit)) >= limit
}

// javaReplacement turns a Java replacement string ($1 for a group, \ escaping the next
// character) into a Go template (${1}, $$ for a dollar). ok is false for a malformed one.
func javaReplacement(s string) (string, bool) {
	if !strings.ContainsAny(s, `$\`) {
		return s, true
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			i++
			if i >= len(s) {
				return "", false
			}
			if s[i] == '$' {
				b.WriteString("$$")
			} else {
				b.WriteByte(s[i])
			}
		case '$':
			j := i + 1
			for j < len(s) && s[j] >= '0' && s[j] <= '9' {
				j++
			}
			if j == i+1 {
				return "", false
			}
			b.WriteString("${" + s[i+1:j] + "}")
			i = j - 1
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), true
}

// buildSplit is str:split(s, regex, index): the index-th piece of s split around regex,
// trailing empty pieces dropped (Java's String.split).
func buildSplit(c *siddhiql.Call, args []*Compiled, _ *Env) (*Compiled, error) {
	if err := strArgs(c, args, 0, 1); err != nil {
		return nil, err
	}
	if err := needType(c, args, 2, siddhiql.TypeInt); err != nil {
		return nil, err
	}
	re, err := compileRegexp(c, args, 1, keep)
	if err != nil {
		return nil, err
	}
	s, p, idx := args[0].Eval, args[1].Eval, args[2].Eval
	return result(siddhiql.TypeString, func(r Row) Value {
		x, y, n := s(r), p(r), idx(r)
		if x.IsNull() || y.IsNull() || n.IsNull() {
			return Null
		}
		rx := dynRegexp(re, y.S, keep)
		if rx == nil {
			return Null
		}
		parts := javaSplit(rx, x.S)
		if n.I < 0 || n.I >= int64(len(parts)) {
			return Null
		}
		return String(parts[n.I])
	})
}

func javaSplit(rx *regexp.Regexp, s string) []string {
	if s == "" {
		return []string{""}
	}
	parts := rx.Split(s, -1)
	// A zero-width match at the start gives no leading empty piece in Java.
	if len(parts) > 1 && parts[0] == "" {
		if loc := rx.FindStringIndex(s); loc != nil && loc[0] == 0 && loc[1] == 0 {
			parts = parts[1:]
		}
	}
	for len(parts) > 0 && parts[len(parts)-1] == "" {
		parts = parts[:len(parts)-1]
	}
	return parts
}
