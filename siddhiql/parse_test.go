package siddhiql

import (
	"strings"
	"testing"
)

func mustParse(t *testing.T, src string) *App {
	t.Helper()
	app, err := Parse(src)
	if err != nil {
		t.Fatalf("Parse: %v\n%s", err, src)
	}
	return app
}

func TestParse_Empty(t *testing.T) {
	for _, src := range []string{"", "  -- nothing\n/* at all */", "@app:name('X')"} {
		app := mustParse(t, src)
		if len(app.Streams)+len(app.Aggregations)+len(app.Queries) != 0 {
			t.Errorf("Parse(%q) has definitions", src)
		}
	}
}

func TestParse_AppAnnotations(t *testing.T) {
	app := mustParse(t, `@App:Name('Shop') @app:description("d") @app:statistics(reporter = 'console')
define stream S (a int);`)
	if app.Name != "Shop" {
		t.Errorf("Name = %q, want Shop", app.Name)
	}
	if len(app.Annotations) != 3 || app.Annotations[2].Name != "app:statistics" ||
		app.Annotations[2].Elements[0] != (Element{Pos: Pos{1, 57}, Key: "reporter", Value: "console"}) {
		t.Errorf("Annotations = %s", Dump(app))
	}
	if len(app.Streams[0].Annotations) != 0 {
		t.Errorf("app annotations leaked to the stream")
	}
}

func TestParse_Stream(t *testing.T) {
	app := mustParse(t, "define STREAM `S` (a STRING, b Int, c long, d double, e float, f bool, g object, `from` int)")
	s := app.Streams[0]
	want := []Type{TypeString, TypeInt, TypeLong, TypeDouble, TypeFloat, TypeBool, TypeObject, TypeInt}
	if s.Name != "S" || s.Pos != (Pos{1, 1}) || len(s.Attributes) != len(want) {
		t.Fatalf("stream = %s", Dump(app))
	}
	for i, a := range s.Attributes {
		if a.Type != want[i] {
			t.Errorf("attribute %s type = %s, want %s", a.Name, a.Type, want[i])
		}
	}
	if s.Attributes[7].Name != "from" || s.Attributes[1].Pos != (Pos{1, 30}) {
		t.Errorf("attributes = %+v", s.Attributes)
	}
}

func TestParse_StreamAnnotations(t *testing.T) {
	app := mustParse(t, `@sink(type='http', publisher.url='http://x', @map(type='json', @payload("{a}")), 'pos')
@Async(buffer-size='10', a:b='c')
@info
define stream S (a int);`)
	s := app.Streams[0]
	if len(s.Annotations) != 3 {
		t.Fatalf("annotations = %s", Dump(app))
	}
	sink := s.Annotations[0]
	if sink.Name != "sink" || len(sink.Elements) != 3 || sink.Elements[1].Key != "publisher.url" ||
		sink.Elements[2] != (Element{Pos: Pos{1, 82}, Value: "pos"}) {
		t.Errorf("sink = %s %+v", formatAnnotation(sink), sink.Elements)
	}
	if m := sink.Annotations[0]; m.Name != "map" || m.Annotations[0].Elements[0].Value != "{a}" {
		t.Errorf("map = %s", formatAnnotation(m))
	}
	if got := formatAnnotation(s.Annotations[1]); got != `@Async(buffer-size="10", a:b="c")` {
		t.Errorf("async = %s", got)
	}
}

func TestParse_Routing(t *testing.T) {
	tests := []struct {
		ann  string
		want Routing
	}{
		{"", Routing{Strategy: RoundRobin}},
		{"@distribution(strategy='roundRobin')", Routing{Strategy: RoundRobin}},
		{"@distribution(strategy='partitioned', partitionKey='b')", Routing{Strategy: Partitioned, PartitionKey: "b"}},
		{"@DISTRIBUTION(partitionkey='a', Strategy='PARTITIONED')", Routing{Strategy: Partitioned, PartitionKey: "a"}},
		{"@distribution(strategy='broadcast')", Routing{Strategy: Broadcast}},
		{"@distribution", Routing{Strategy: RoundRobin}},
		{"@sink(type='log', @distribution(strategy='broadcast', @destination(x='1')))", Routing{Strategy: RoundRobin}},
	}
	for _, tt := range tests {
		app := mustParse(t, tt.ann+"\ndefine stream S (a string, b long);")
		if got := app.Streams[0].Routing; got != tt.want {
			t.Errorf("%s: Routing = %+v, want %+v", tt.ann, got, tt.want)
		}
	}
}

// errCase is a source that must fail with msg at pos.
type errCase struct {
	name, src, pos, msg string
}

func runErrCases(t *testing.T, parse func(string) error, tests []errCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkErr(t, tt.src, parse(tt.src), tt.pos, tt.msg)
		})
	}
}

func parseApp(src string) error {
	_, err := Parse(src)
	return err
}

func TestParse_Errors(t *testing.T) {
	runErrCases(t, parseApp, []errCase{
		{"missing semicolon", "define stream S (a int)\n\ndefine stream T (a int);", "3:1",
			"expected ';' after stream definition, found 'define'"},
		{"missing semicolon after query", "define stream S (a int);\nfrom S insert into T from S insert into U;", "2:22",
			"expected ';' after query, found 'from'"},
		{"stray semicolon", "define stream S (a int);;", "1:25", "expected 'define' or 'from', found ';'"},
		{"garbage", "select 1", "1:1", "expected 'define' or 'from', found 'select'"},
		{"primary key", "@primaryKey('b') define table T (a int);", "1:13", "@primaryKey names \"b\", which is not an attribute of table T"},
		{"define window", "define window W (a int) length(5);", "1:8", "define window is not supported"},
		{"trigger without at", "define trigger T every 5 min;", "1:18", "expected 'at' after trigger name T"},
		{"trigger every count", "define trigger T at every 5;", "1:27", "trigger T: 'at every' needs a time such as '5 sec', found 5"},
		{"trigger empty", "define trigger T at ' ';", "1:21", "trigger T: 'at' needs 'start' or a cron expression, found an empty string"},
		{"trigger bare word", "define trigger T at start;", "1:21", "expected 'every <time>', 'start' or a cron expression in quotes after 'at'"},
		{"define function", "define function f[javascript] return int { return 1; };", "1:8", "define function is not supported"},
		{"define other", "define foo X;", "1:8", "expected 'stream' or 'aggregation' after 'define', found 'foo'"},
		{"partition twice", "define stream S (a int);\n  partition with (a of S, a > 1 as 'x' of S) begin from S select a insert into O; end;", "2:27",
			"stream S is partitioned twice in this partition (first at 2:19)"},
		{"partition nested", "define stream S (a int);\npartition with (a of S) begin partition with (a of S) begin from S select a insert into O; end; end;", "2:31",
			"expected a query or 'end' in the partition begun at 2:1, found 'partition'"},
		{"partition range label", "define stream S (a int);\npartition with (a < 1 as x of S) begin from S select a insert into O; end;", "2:26",
			"expected the range's label in quotes after 'as', found 'x'"},
		{"partition no of", "define stream S (a int);\npartition with (a S) begin from S select a insert into O; end;", "2:19",
			"expected 'of' and the stream name after the partition key, found 'S'"},
		{"partition query", "define stream S (a int);\npartition with (a of S) begin define stream T (b int); end;", "2:31",
			"expected a query or 'end' in the partition begun at 2:1, found 'define'"},
		{"duplicate attribute", "define stream S (a int, b int, a long);", "1:32", `duplicate attribute "a" in stream S`},
		{"unknown type", "define stream S (a integer);", "1:20", `unknown type "integer" for attribute a`},
		{"missing type", "define stream S (a, b int);", "1:19", "expected a type for attribute a, found ','"},
		{"empty stream", "define stream S ();", "1:18", "expected an attribute name, found ')'"},
		{"duplicate stream", "define stream S (a int);\ndefine stream S (b int);", "2:1", `"S" is already defined at 1:1`},
		{"stream and aggregation", "define stream S (a int);\ndefine aggregation S from S select sum(a) as t aggregate every sec;",
			"2:1", `"S" is already defined at 1:1`},
		{"late app annotation", "define stream S (a int);\n@app:name('x')\ndefine stream T (a int);", "2:1",
			"app annotation @app:name must come before all definitions"},
		{"app annotation after other", "@info(name='x') @app:name('x')\ndefine stream T (a int);", "1:17",
			"app annotation @app:name must come before"},
		{"duplicate app name", "@app:name('x') @app:name('y')", "1:16", "duplicate @app:name"},
		{"bad app name", "@app:name(a='x')", "1:1", "@app:name takes one value"},
		{"dangling annotation", "define stream S (a int);\n@info(name='x')", "2:1",
			"annotation @info is not followed by a definition or query"},
		{"annotation value not string", "@sink(type=http) define stream S (a int);", "1:12",
			"annotation value of type must be a quoted string, found 'http'"},
		{"annotation missing comma", "@sink(type='a' b='c') define stream S (a int);", "1:16",
			"expected ',' or ')' in annotation @sink, found 'b'"},
		{"annotation bad element", "@sink(1) define stream S (a int);", "1:7",
			"expected key='value' or 'value' in annotation @sink, found '1'"},
		{"annotation no name", "@(x) define stream S (a int);", "1:2", "expected an annotation name after '@', found '('"},
		{"routing unknown strategy", "@distribution(strategy='hash') define stream S (a int);", "1:15",
			`unknown @distribution strategy "hash": supported are partitioned, roundRobin, broadcast`},
		{"routing missing key", "@distribution(strategy='partitioned') define stream S (a int);", "1:1",
			"@distribution(strategy='partitioned') needs partitionKey='<attribute>'"},
		{"routing key not attribute", "define stream X (a int);\n@distribution(strategy='partitioned', partitionKey='b') define stream S (a int);",
			"2:39", `partitionKey "b" is not an attribute of stream S`},
		{"routing key case", "@distribution(strategy='partitioned', partitionKey='A') define stream S (a int);",
			"1:39", `partitionKey "A" is not an attribute of stream S`},
		{"routing key without partitioned", "@distribution(strategy='broadcast', partitionKey='a') define stream S (a int);",
			"1:37", "partitionKey is only allowed with strategy='partitioned', not broadcast"},
		{"routing key default strategy", "@distribution(partitionKey='a') define stream S (a int);",
			"1:15", "partitionKey is only allowed with strategy='partitioned', not roundRobin"},
		{"routing unknown element", "@distribution(strategy='broadcast', destinations='2') define stream S (a int);",
			"1:37", "unknown @distribution element destinations"},
		{"routing destination", "@distribution(strategy='broadcast', @destination(url='x')) define stream S (a int);",
			"1:37", "@destination is not supported inside @distribution"},
		{"routing twice", "@distribution(strategy='broadcast') @distribution(strategy='broadcast') define stream S (a int);",
			"1:37", "stream S has more than one @distribution"},
		{"routing positional", "@distribution('broadcast') define stream S (a int);",
			"1:15", "found the value 'broadcast' without a key"},
		{"routing duplicate key", "@distribution(strategy='broadcast', strategy='broadcast') define stream S (a int);",
			"1:37", "duplicate strategy in @distribution"},
	})
}

func TestParse_ErrorText(t *testing.T) {
	_, err := Parse("define stream S (a int)\ndefine stream T (a int);")
	if got, want := err.Error(), "siddhiql: 2:1: expected ';' after stream definition, found 'define'"; got != want {
		t.Errorf("error = %q, want %q", got, want)
	}
	_, err = Parse(strings.Repeat("\n", 2) + "  partition with (a of S) begin end;")
	if got, want := err.Error(), "siddhiql: 3:33: the partition begun at 3:3 has no queries"; got != want {
		t.Errorf("error = %q, want %q", got, want)
	}
}
