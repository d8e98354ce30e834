package siddhiql

import "strings"

// TriggerDef is `define trigger Name at every <time>`, `at 'start'` or `at '<cron>'`. A
// trigger is a stream Name (triggered_time long) whose events the engine makes itself.
type TriggerDef struct {
	Pos         Pos
	Name        string
	Annotations []*Annotation
	// Every is the period of `at every <time>` in ms; 0 for the other forms.
	Every int64
	// Start is set for `at 'start'`.
	Start bool
	// Cron is the cron expression of `at '<cron>'` (Quartz's form, seconds first); empty
	// for the other forms. CronPos is where its string starts.
	Cron    string
	CronPos Pos
}

// TriggeredTime is the one attribute of a trigger's stream.
const TriggeredTime = "triggered_time"

// Attributes are the attributes of the trigger's stream: triggered_time long.
func (t *TriggerDef) Attributes() []Attribute {
	return []Attribute{{Pos: t.Pos, Name: TriggeredTime, Type: TypeLong}}
}

// parseTrigger parses `Name at (every <time> | '<string>')`; `define trigger` is consumed.
func (p *parser) parseTrigger(pos Pos, anns []*Annotation) *TriggerDef {
	t := &TriggerDef{Pos: pos, Annotations: anns, Name: p.name("a trigger name").text}
	p.expectWord("at", "after trigger name "+t.Name)
	if p.acceptWord("every") {
		start := p.tok()
		e := p.parseExpr()
		lit, ok := e.(*Literal)
		if !ok || !lit.Time {
			p.failf(start.pos, "trigger %s: 'at every' needs a time such as '5 sec', found %s", t.Name, FormatExpr(e))
		}
		if lit.Int <= 0 {
			p.failf(lit.Pos, "trigger %s: the period must be positive, found %s", t.Name, FormatExpr(lit))
		}
		t.Every = lit.Int
		return t
	}
	s := p.tok()
	if s.kind != tString {
		p.failf(s.pos, "expected 'every <time>', 'start' or a cron expression in quotes after 'at', found %s", s.describe())
	}
	p.advance()
	if strings.TrimSpace(s.text) == "" {
		p.failf(s.pos, "trigger %s: 'at' needs 'start' or a cron expression, found an empty string", t.Name)
	}
	if strings.EqualFold(strings.TrimSpace(s.text), "start") {
		t.Start = true
		return t
	}
	t.Cron, t.CronPos = s.text, s.pos
	return t
}
