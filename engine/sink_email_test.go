package engine

import (
	"strings"
	"testing"

	"github.com/tally-db/tally/siddhiql"
)

// emailSinkOf deploys an app whose stream Out (name string, email string, n long) has sink.
func emailSinkOf(t *testing.T, sink string) (Sink, error) {
	t.Helper()
	e, _ := New(Config{})
	_, err := e.Deploy("@app:name('M') define stream S (name string, email string, n long);\n" + sink +
		"\ndefine stream Out (name string, email string, n long);\nfrom S select name, email, n insert into Out;\n")
	if err != nil {
		return Sink{}, err
	}
	s := e.Sinks()
	if len(s) != 1 {
		t.Fatalf("sinks %+v", s)
	}
	return s[0], nil
}

func TestEmailSink_Options(t *testing.T) {
	sk, err := emailSinkOf(t, `@sink(type='email', username='alerts', address='alerts@example.com', password='pw', host='smtp.example.com',
		port='587', ssl.enable='false', auth='true', content.type='text/html', subject='Alert for {{name}}',
		to='{{email}}, ops@example.com', cc='cc@example.com', bcc='{{email}}', timeout='2 sec', retry.interval='50 millisec')`)
	if err != nil {
		t.Fatal(err)
	}
	m := sk.Email
	if m.Username != "alerts" || m.Address != "alerts@example.com" || m.Password != "pw" || m.Host != "smtp.example.com" ||
		m.Port != 587 || m.SSL != "false" || m.Auth != "true" || m.ContentType != EmailTextHTML || m.Map != EmailMapText ||
		m.Subject.Text != "Alert for {{name}}" || m.Cc.Text != "cc@example.com" || sk.TimeoutMillis != 2000 || sk.RetryIntervalMillis != 50 {
		t.Errorf("options %+v, sink %+v", m, sk)
	}
	other, _ := emailSinkOf(t, `@sink(type='email', username='alerts', address='alerts@example.com', password='pw2', host='smtp.example.com',
		port='587', ssl.enable='false', auth='true', content.type='text/html', subject='Alert for {{name}}',
		to='{{email}}, ops@example.com', cc='cc@example.com', bcc='{{email}}', timeout='2 sec', retry.interval='50 millisec')`)
	if other.Key() == sk.Key() {
		t.Error("a changed option keeps the sink's key")
	}
}

func TestEmailSink_Errors(t *testing.T) {
	for _, c := range []struct{ sink, want string }{
		{"@sink(type='email', subject='x')", "2:1: @sink(type='email') needs to="},
		{"@sink(type='email', to='a@b', content.type='application/pdf')", `content.type "application/pdf" is not text/plain or text/html`},
		{"@sink(type='email', to='{{mail}}')", "to: {{mail}} is not an attribute of stream Out"},
		{"@sink(type='email', to='a@b', subject='for {{nom}}')", "subject: {{nom}} is not an attribute of stream Out"},
		{"@sink(type='email', to='a@b', cc='{{email}')", "cc has a '{{' without '}}'"},
		{"@sink(type='email', to='a@b', @map(type='text', @payload('hi {{who}}')))", "@payload: {{who}} is not an attribute of stream Out"},
		{"@sink(type='email', to='a@b', @map(type='xml'))", "@map(type='xml'): an email sink maps with type='text' or type='json'"},
		{"@sink(type='email', to='a@b', @map(type='json', @payload('x')))", "@map(type='json') of an email sink takes no @payload"},
		{"@sink(type='email', to='not an address')", `to "not an address" is not a comma-separated list of email addresses`},
		{"@sink(type='email', to='a@b', port='99999')", `port "99999" is not a port number`},
		{"@sink(type='email', to='a@b', host='smtp.example.com:25')", "is not a host name or IP address"},
		{"@sink(type='email', to='a@b', ssl.enable='yes')", `ssl.enable "yes" is neither 'true' nor 'false'`},
		{"@sink(type='email', to='a@b', attachments='/etc/passwd')", "attachments is not supported"},
		{"@sink(type='email', to='a@b', publisher.url='http://x/')", "@sink(type='email') has no option publisher.url"},
	} {
		_, err := emailSinkOf(t, c.sink)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err %v, want %q", c.sink, err, c.want)
		}
	}
}

func TestEmailSink_Render(t *testing.T) {
	data := []byte(`{"name":"Bob \"B\"","email":"bob@example.com","n":42}`)
	for _, c := range []struct {
		sink                       string
		subject, to, cc, bcc, body string
	}{
		// Without @payload: the default text mapping.
		{sink: `@sink(type='email', subject='Alert: {{name}} ({{n}})', to='{{email}}')`,
			subject: `Alert: Bob "B" (42)`, to: "bob@example.com", body: "name:\"Bob \\\"B\\\"\",\nemail:\"bob@example.com\",\nn:42"},
		{sink: `@sink(type='email', to='{{email}}, ops@example.com', cc='{{email}}', bcc='audit@example.com', @map(type='text', @payload("{{name}} sent {{n}}")))`,
			to: "bob@example.com ops@example.com", cc: "bob@example.com", bcc: "audit@example.com", body: `Bob "B" sent 42`},
		// text/html escapes the values in the payload, not the payload itself.
		{sink: `@sink(type='email', content.type='text/html', to='{{email}}', @map(type='text', @payload('<b>{{name}}</b>')))`,
			to: "bob@example.com", body: "<b>Bob &#34;B&#34;</b>"},
		{sink: `@sink(type='email', to='x@example.com', @map(type='json'))`, to: "x@example.com", body: `{"whole":"output"}`},
	} {
		sk, err := emailSinkOf(t, c.sink)
		if err != nil {
			t.Fatalf("%s: %v", c.sink, err)
		}
		m, err := sk.Email.Render(data, []byte(`{"whole":"output"}`))
		if err != nil {
			t.Fatalf("%s: render: %v", c.sink, err)
		}
		addrs := func(as []string) string { return strings.Join(as, " ") }
		var to, cc, bcc []string
		for _, a := range m.To {
			to = append(to, a.Address)
		}
		for _, a := range m.Cc {
			cc = append(cc, a.Address)
		}
		for _, a := range m.Bcc {
			bcc = append(bcc, a.Address)
		}
		if m.Subject != c.subject || addrs(to) != c.to || addrs(cc) != c.cc || addrs(bcc) != c.bcc || m.Body != c.body {
			t.Errorf("%s:\n got subject %q to %q cc %q bcc %q body %q\nwant subject %q to %q cc %q bcc %q body %q", c.sink,
				m.Subject, to, cc, bcc, m.Body, c.subject, c.to, c.cc, c.bcc, c.body)
		}
		if got := len(m.Recipients()); got != len(to)+len(cc)+len(bcc) {
			t.Errorf("%s: %d recipients", c.sink, got)
		}
	}
}

// A value that breaks a header or an address does not reach the message: a subject is one
// line, and an address list that does not parse is an error.
func TestEmailSink_RenderRefusesBadValues(t *testing.T) {
	sk, err := emailSinkOf(t, `@sink(type='email', subject='{{name}}', to='{{email}}')`)
	if err != nil {
		t.Fatal(err)
	}
	m, err := sk.Email.Render([]byte(`{"name":"a\r\nBcc: evil@example.com","email":"bob@example.com","n":1}`), nil)
	if err != nil || m.Subject != "a Bcc: evil@example.com" || len(m.Recipients()) != 1 {
		t.Errorf("subject with a line break: %+v, %v", m, err)
	}
	for _, email := range []string{`""`, `"not an address"`, `"a@b\r\nX: y"`, `null`} {
		if _, err := sk.Email.Render([]byte(`{"name":"a","email":`+email+`,"n":1}`), nil); err == nil {
			t.Errorf("email %s: no error", email)
		}
	}
	if _, err := sk.Email.Render([]byte(`not json`), nil); err == nil {
		t.Error("bad data: no error")
	}
}

// An email sink's password is shown nowhere: not in the app text the API shows, not in the
// sink's name.
func TestEmailSink_PasswordRedacted(t *testing.T) {
	app := `@app:name('M') define stream S (email string);
@sink(type='email', username='u', password='hunter2', host='smtp.example.com', to='{{email}}')
define stream Out (email string);
from S select email insert into Out;`
	if got := siddhiql.Redact(app); strings.Contains(got, "hunter2") || !strings.Contains(got, "password='***'") {
		t.Errorf("redacted text:\n%s", got)
	}
	e := newEngineApps(t, []string{app})
	if a, _ := e.App("M"); len(a.Notes) != 0 {
		t.Errorf("an email sink naming its host gets notes %q", a.Notes)
	}
	if s := e.Sinks()[0]; s.Email.Password != "hunter2" || strings.Contains(s.String(), "hunter2") {
		t.Errorf("sink %s, password %q", s, s.Email.Password)
	}
}
