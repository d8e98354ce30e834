package expr

import (
	"strings"
	"testing"
	"time"

	"github.com/tally-db/tally/siddhiql"
)

type fakeGeo struct{}

func (fakeGeo) Country(ip string) string {
	if ip == "1.2.3.4" {
		return "Italy"
	}
	return ""
}

func (fakeGeo) City(ip string) string {
	if ip == "1.2.3.4" {
		return "Naples"
	}
	return ""
}

// evalFunc compiles src over testAttrs with env and evaluates it on row.
func evalFunc(t *testing.T, src string, env *Env, row Row) Value {
	t.Helper()
	e, err := siddhiql.ParseExpr(src)
	if err != nil {
		t.Fatalf("parse %q: %v", src, err)
	}
	c, err := Compile(e, &Fields{Stream: "S", Attrs: testAttrs, Env: env})
	if err != nil {
		t.Fatalf("compile %q: %v", src, err)
	}
	return c.Eval(row)
}

func TestFunctions(t *testing.T) {
	row := Row{String("Hello World"), Int(7), Long(1415712224000), Float(2.5), Double(-3.5), Bool(true), {T: siddhiql.TypeObject, S: `100.3`}}
	nulls := Row{Null, Null, Null, Null, Null, Null, Null}
	env := &Env{App: "A", GeoIP: fakeGeo{}}
	env.Enter(5, 1000)
	cases := []struct {
		src  string
		row  Row
		want string
	}{
		{"ifThenElse(i > 5, 'big', 'small')", row, `"big"`},
		{"ifThenElse(b, 1, 2)", nulls, "2"},
		{"s is null", nulls, "true"},
		{"S.s is null", row, "false"},
		{"not (s is null)", row, "true"},
		{"coalesce(s, 'none')", nulls, `"none"`},
		{"coalesce(s, 'none')", row, `"Hello World"`},
		{"default(i, 0)", nulls, "0"},
		{"cast(o, 'double')", row, "100.3"},
		{"cast(i, 'long')", row, "7"},
		{"convert(d, 'int')", row, "-3"},
		{"convert(l, 'string')", row, `"1415712224000"`},
		{"convert('12.5', 'double')", row, "12.5"},
		{"convert('x', 'int')", row, "null"},
		{"convert('+5', 'int')", row, "5"},
		{"convert('+-5', 'long')", row, "null"},
		{"convert(b, 'long')", row, "1"},
		{"convert(1e10, 'string')", row, `"1.0E10"`},
		{"convert(0.0001, 'string')", row, `"1.0E-4"`},
		{"convert(f, 'string')", row, `"2.5"`},
		{"convert(o, 'string')", row, `"100.3"`},
		{"time:timestampInMilliseconds(s)", nulls, "1000"},
		{"time:timestampInMilliseconds(s, 'yyyy')", nulls, "null"},
		{"instanceOfString(s)", row, "true"},
		{"instanceOfInteger(i)", row, "true"},
		{"instanceOfLong(i)", row, "false"},
		{"instanceOfDouble(o)", row, "true"},
		{"instanceOfBoolean(s)", nulls, "false"},
		{"maximum(1, -5, 3)", row, "3"},
		{"maximum(-1.5, -5.0)", row, "-1.5"},
		{"minimum(i, 3, 9)", row, "3"},
		{"minimum(i, 3)", nulls, "3"},
		{"eventTimestamp()", row, "1000"},
		{"currentTimeMillis()", row, "1000"},
		{"str:concat(s, '-', i, '-', d, '-', b)", row, `"Hello World-7--3.5-true"`},
		{"str:concat(s, '-', i)", nulls, `"-"`},
		{"str:length(s)", row, "11"},
		{"str:length('héllo😀')", row, "7"},
		{"str:substr(s, 6)", row, `"World"`},
		{"str:substr(s, 0, 5)", row, `"Hello"`},
		{"str:substr(s, 9, 5)", row, "null"},
		{"str:substr(s, 'W.r')", row, `"Wor"`},
		{"str:substr('AB12CD', '([A-Z]+)([0-9]+)', 2)", row, `"12"`},
		{"str:substr(s, 'xyz')", row, `""`},
		{"str:contains(s, 'World')", row, "true"},
		{"str:contains(s, 'world')", nulls, "false"},
		{"str:upper(s)", row, `"HELLO WORLD"`},
		{"str:lower(s)", row, `"hello world"`},
		{"str:trim('  x \t')", row, `"x"`},
		{"str:equalsIgnoreCase(s, 'hello world')", row, "true"},
		{"str:replaceAll(s, 'o', '0')", row, `"Hell0 W0rld"`},
		{"str:replaceAll(s, '(\\w+) (\\w+)', '$2 $1')", row, `"World Hello"`},
		{"str:replaceFirst(s, 'o', '0')", row, `"Hell0 World"`},
		{"str:split('a,b,,c,,', ',', 3)", row, `"c"`},
		{"str:split('a,b,,c,,', ',', 4)", row, "null"},
		{"str:regexp(s, 'Hello.*')", row, "true"},
		{"str:regexp(s, 'Hello')", row, "false"},
		{"regex:matches('2[0-9][0-9]', '200')", row, "true"},
		{"regex:matches('2[0-9][0-9]', '404')", row, "false"},
		{"time:timestampInMilliseconds()", row, "1000"},
		{"time:timestampInMilliseconds('2007-11-30 10:30:19.000')", row, "1196418619000"},
		{"time:timestampInMilliseconds('2007-11-30 10:30:19', 'yyyy-MM-dd HH:mm:ss')", row, "1196418619000"},
		{"time:timestampInMilliseconds('2007/11/30', 'yyyy-MM-dd')", row, "null"},
		{"time:dateFormat(l, 'yyyy-MM-dd HH:mm:ss')", row, `"2014-11-11 13:23:44"`},
		{"time:dateFormat('2014-11-11 13:23:44', 'yyyy/MM/dd', 'yyyy-MM-dd HH:mm:ss')", row, `"2014/11/11"`},
		{"time:dateFormat('2014-11-11 13:23:44.657', 'EEE, d MMM yyyy')", row, `"Tue, 11 Nov 2014"`},
		{"time:extract('MONTH', '2014-3-11 22:23:44', 'yyyy-MM-dd hh:mm:ss')", row, "3"},
		{"time:extract('HOUR', '2014-3-11 22:23:44', 'yyyy-MM-dd hh:mm:ss')", row, "22"},
		{"time:extract('HOUR', '2014-03-11 10:23:44 PM', 'yyyy-MM-dd hh:mm:ss a')", row, "22"},
		{"time:extract('year', '2014-03-11 02:23:44', 'yyyy-MM-dd HH:mm:ss')", row, "2014"},
		{"time:extract(l, 'HOUR')", row, "13"},
		{"time:extract(l, 'WEEK')", row, "46"},
		{"time:extract(l, 'QUARTER')", row, "4"},
		{"time:extract(1704067200000L, 'WEEK')", row, "1"}, // Monday 2024-01-01
		{"time:extract(1735516800000L, 'WEEK')", row, "1"}, // Monday 2024-12-30: the week holds 2025-01-01
		{"time:dateAdd('2014-11-11 13:23:44.657', 5, 'YEAR')", row, `"2019-11-11 13:23:44.657"`},
		{"time:dateAdd('2015-01-31 00:00:00', 1, 'MONTH', 'yyyy-MM-dd HH:mm:ss')", row, `"2015-02-28 00:00:00"`},
		{"time:dateAdd(l, 1, 'HOUR')", row, `"1415715824000"`},
		{"time:dateSub('2014-11-11 13:23:44.657', 5, 'YEAR')", row, `"2009-11-11 13:23:44.657"`},
		{"time:dateSub(l, 1, 'HOUR')", row, `"1415708624000"`},
		{"time:dateDiff('2014-11-11 13:23:44', '2014-11-9 13:23:44', 'yyyy-MM-dd HH:mm:ss', 'yyyy-MM-dd HH:mm:ss')", row, "2"},
		{"time:dateDiff('2014-11-13 13:23:44.000', '2014-11-09 13:23:44.000')", row, "4"},
		{"time:dateDiff(1415692424000L, 1412841224000L)", row, "33"},
		{"time:currentTimestamp()", row, `"1970-01-01 00:00:01"`},
		{"time:currentDate()", row, `"1970-01-01"`},
		{"time:currentTime()", row, `"00:00:01"`},
		{"math:abs(d)", row, "3.5"},
		{"math:floor(d)", row, "-4.0"},
		{"math:ceil(d)", row, "-3.0"},
		{"math:round(d)", row, "-3"},
		{"math:round(f)", row, "3"},
		{"math:power(2, 10)", row, "1024.0"},
		{"math:sqrt(16)", row, "4.0"},
		{"math:log(8, 2)", row, "3.0"},
		{"math:max(i, d)", row, "7.0"},
		{"math:min(i, d)", row, "-3.5"},
		{"math:abs(d)", nulls, "null"},
		{"geo:findCountryFromIP('1.2.3.4')", row, `"Italy"`},
		{"geo:findCityFromIP('1.2.3.4')", row, `"Naples"`},
		{"geo:findCityFromIP('10.0.0.1')", row, `""`},
	}
	for _, c := range cases {
		if got := evalFunc(t, c.src, env, c.row).String(); got != c.want {
			t.Errorf("%s = %s, want %s", c.src, got, c.want)
		}
	}
}

func TestUUIDDeterministic(t *testing.T) {
	a, b := &Env{App: "A"}, &Env{App: "A"}
	a.Enter(7, 100)
	b.Enter(7, 999)
	x1, x2 := a.UUID(), a.UUID()
	if y1 := b.UUID(); x1 != y1 {
		t.Errorf("same app, index and call number give %s and %s", x1, y1)
	}
	if x1 == x2 {
		t.Errorf("two calls in one entry both gave %s", x1)
	}
	a.Enter(8, 100)
	if x3 := a.UUID(); x3 == x1 || x3 == x2 {
		t.Errorf("entry 8 repeats an identifier of entry 7: %s", x3)
	}
	c := &Env{App: "B"}
	c.Enter(7, 100)
	if z := c.UUID(); z == x1 {
		t.Errorf("apps A and B gave the same identifier %s", z)
	}
	if len(x1) != 36 || x1[14] != '8' || !strings.ContainsAny(x1[19:20], "89ab") {
		t.Errorf("%s is not a version 8 RFC 9562 UUID", x1)
	}
}

func TestFunctionsConstFold(t *testing.T) {
	e, _ := siddhiql.ParseExpr("str:concat('a', 'b')")
	c, err := Compile(e, &Fields{Stream: "S", Attrs: testAttrs})
	if err != nil || !c.Const {
		t.Fatalf("constant call: const=%v err=%v", c != nil && c.Const, err)
	}
	env := &Env{}
	e, _ = siddhiql.ParseExpr("time:timestampInMilliseconds()")
	c, err = Compile(e, &Fields{Stream: "S", Attrs: testAttrs, Env: env})
	if err != nil || c.Const {
		t.Fatalf("stamped call folded: const=%v err=%v", c != nil && c.Const, err)
	}
	env.Enter(1, 42)
	if v := c.Eval(nil); v.I != 42 {
		t.Fatalf("time:timestampInMilliseconds() = %v after Enter(1, 42)", v)
	}
	// The engine sets the GeoIP database after compiling: a constant lookup must not be
	// folded before it is there.
	e, _ = siddhiql.ParseExpr("geo:findCountryFromIP('1.2.3.4')")
	c, err = Compile(e, &Fields{Stream: "S", Attrs: testAttrs, Env: env})
	if err != nil {
		t.Fatal(err)
	}
	env.GeoIP = fakeGeo{}
	if v := c.Eval(nil); v.S != "Italy" {
		t.Fatalf("geo:findCountryFromIP('1.2.3.4') = %v with the database set after compiling", v)
	}
}

func TestJavaLayout(t *testing.T) {
	good := map[string]string{
		"yyyy-MM-dd HH:mm:ss":      "2006-01-02 15:04:05",
		"yyyy-MM-dd HH:mm:ss.SSS":  "2006-01-02 15:04:05.000",
		"yy/M/d h:m:s a":           "06/1/2 3:4:5 PM",
		"EEEE, MMMM dd":            "Monday, January 02",
		"EEE MMM":                  "Mon Jan",
		"yyyy-MM-dd'T'HH:mm:ssXXX": "2006-01-02T15:04:05Z07:00",
		"yyyyMMdd Z z":             "20060102 -0700 MST",
		"'o''clock' DDD":           "o'clock 002",
	}
	for in, want := range good {
		got, err := javaLayout(in)
		if err != nil || got != want {
			t.Errorf("javaLayout(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	parse := map[string]string{
		"yyyy-MM-dd hh:mm:ss":   "2006-1-2 15:4:5",
		"yyyy-MM-dd hh:mm:ss a": "2006-1-2 3:4:5 PM",
		"dd/MM/yy HH:mm":        "2/1/06 15:4",
	}
	for in, want := range parse {
		got, err := javaParseLayout(in)
		if err != nil || got != want {
			t.Errorf("javaParseLayout(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"H:mm", "ss SSS", "yyyy G", "'unterminated", "yyyy'1'", "ww", "kk"} {
		if got, err := javaLayout(in); err == nil {
			t.Errorf("javaLayout(%q) = %q, want an error", in, got)
		}
	}
}

func TestUserAgent(t *testing.T) {
	const (
		win     = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
		iphone  = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1"
		android = "Mozilla/5.0 (Linux; Android 10; SM-G973F) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.0.0 Mobile Safari/537.36"
		ie      = "Mozilla/5.0 (compatible; MSIE 10.0; Windows NT 6.2; Trident/6.0)"
	)
	cases := []struct{ ua, prop, want string }{
		{win, "os", "Windows"}, {win, "browser", "Chrome"}, {win, "device", "Other"},
		{iphone, "os", "iOS"}, {iphone, "browser", "Mobile Safari"}, {iphone, "device", "iPhone"},
		{android, "os", "Android"}, {android, "browser", "Chrome Mobile"}, {android, "device", "SM-G973F"},
		{ie, "browser", "IE"},
		{"", "os", "Other"},
	}
	for _, c := range cases {
		row := Row{String(c.ua), Null, Null, Null, Null, Null, Null}
		got := evalFunc(t, "env:getUserAgentProperty(s, '"+c.prop+"')", nil, row)
		if got.S != c.want {
			t.Errorf("getUserAgentProperty(%q, %s) = %v, want %q", c.ua, c.prop, got, c.want)
		}
	}
	e, _ := siddhiql.ParseExpr("env:getUserAgentProperty(s, 'cpu')")
	if _, err := Compile(e, &Fields{Stream: "S", Attrs: testAttrs}); err == nil || !strings.Contains(err.Error(), "unknown property") {
		t.Errorf("property 'cpu': err = %v", err)
	}
}

// plainScope provides no Env of its own.
type plainScope struct{ Fields }

func (p *plainScope) Var(v *siddhiql.Variable) (int, siddhiql.Type, error) { return p.Fields.Var(v) }
func (p *plainScope) Call(c *siddhiql.Call) (int, siddhiql.Type, bool, error) {
	return p.Fields.Call(c)
}

func TestWithEnv(t *testing.T) {
	e, _ := siddhiql.ParseExpr("currentTimeMillis() + l")
	sc := &plainScope{Fields{Stream: "S", Attrs: testAttrs}}
	if _, err := Compile(e, sc); err == nil {
		t.Fatal("a scope without an Env compiled currentTimeMillis()")
	}
	env := &Env{}
	c, err := Compile(e, WithEnv(sc, env))
	if err != nil {
		t.Fatal(err)
	}
	env.Enter(3, 100)
	if v := c.Eval(Row{Null, Null, Long(5), Null, Null, Null, Null}); v.I != 105 {
		t.Errorf("currentTimeMillis() + l = %v, want 105", v)
	}
}

// A replaceAll that would build gigabytes answers null at once instead of wedging the node.
func TestReplaceAllBounded(t *testing.T) {
	big := strings.Repeat("a", 100_000)
	row := Row{String(big), Null, Null, Null, Null, Null, Null}
	start := time.Now()
	if v := evalFunc(t, "str:replaceAll(s, 'a', s)", nil, row); !v.IsNull() {
		t.Errorf("replaceAll building %d bytes answered a value", len(big)*len(big))
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("refusing took %v", d)
	}
	if v := evalFunc(t, "str:replaceAll(s, 'a', 'bb')", nil, row); len(v.S) != 200_000 {
		t.Errorf("replaceAll within the bound: %d bytes, want 200000", len(v.S))
	}
}
