package siddhiql

import (
	"strings"
	"testing"
)

func TestRedact(t *testing.T) {
	const app = `@app:name('Secrets')
define stream In (k string, v long);
@sink(type='http', publisher.url='http://alice:s3cret@hooks.example/in?x=1&token=tok123',
      headers="'Authorization:Bearer abc.def','X-Trace:42'", @map(type='json'))
define stream Out (k string, v long);
@store(type='rdbms', jdbc.url="jdbc:mysql://root:rootpw@db:3306/T?useSSL=false&password=pw2", username='root', password="hunter2")
define aggregation A from In select k, sum(v) as total group by k aggregate every sec;
-- a comment with password='notAnOption' stays
from In select k, v insert into Out;
`
	got := Redact(app)
	for _, secret := range []string{"s3cret", "tok123", "abc.def", "Bearer", "42'", "rootpw", "pw2", "hunter2"} {
		if strings.Contains(got, secret) {
			t.Errorf("redacted text still holds %q:\n%s", secret, got)
		}
	}
	for _, kept := range []string{
		`publisher.url='http://alice:***@hooks.example/in?x=1&token=***'`,
		`headers="'Authorization:***','X-Trace:***'"`,
		`jdbc.url="jdbc:mysql://root:***@db:3306/T?useSSL=false&password=***"`,
		`username='root', password="***"`,
		`@map(type='json')`,
		"password='notAnOption' stays",
		"from In select k, v insert into Out;",
	} {
		if !strings.Contains(got, kept) {
			t.Errorf("redacted text lacks %q:\n%s", kept, got)
		}
	}
	// What is shown still parses, to the same structure.
	if _, err := Parse(got); err != nil {
		t.Errorf("redacted text does not parse: %v\n%s", err, got)
	}
	if plain := "@app:name('P')\ndefine stream S (a string);"; Redact(plain) != plain {
		t.Errorf("text without secrets changed: %q", Redact(plain))
	}
	if got := Redact("@sink(headers='A:b') define stream 'unterminated"); strings.Contains(got, "unterminated") || strings.Contains(got, "A:b") {
		t.Errorf("text that does not lex: %q", got)
	}
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"http://u:p@h/x":                         "http://u:***@h/x",
		"https://u@h/x":                          "https://u@h/x",
		"http://h:80/x?password=a&b=c":           "http://h:80/x?password=***&b=c",
		"post to http://u:p@h/ failed: http://x": "post to http://u:***@h/ failed: http://x",
		"jdbc:mysql://u:p:q@h/db;pwd=z":          "jdbc:mysql://u:***@h/db;pwd=***",
		"no url here":                            "no url here",
	} {
		if got := RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzRedact: Redact never panics, and the text it shows of an app that parses still parses.
func FuzzRedact(f *testing.F) {
	f.Add("@sink(type='http', publisher.url='http://u:p@h/x?token=t', headers=\"'A:b','C:d'\")\ndefine stream S (a string);")
	f.Add("@store(password='x', jdbc.url=\"jdbc:mysql://u:p@h/db\") define aggregation A from S select a aggregate every sec;")
	f.Add(`@sink(headers="""'A:b'""") define stream S (a string);`)
	f.Fuzz(func(t *testing.T, text string) {
		out := Redact(text)
		if _, err := Parse(text); err == nil {
			if _, err := Parse(out); err != nil {
				t.Fatalf("Redact(%q) = %q, which does not parse: %v", text, out, err)
			}
		}
	})
}
