package siddhiql

import (
	"strings"
	"testing"
)

func TestNotes(t *testing.T) {
	app, err := Parse(`@App:name('N')
@App:description('accepted')
@source(type = 'wso2event', wso2.stream.id = 'org.wso2.x:1.0.0', @map(type = 'wso2event'))
@source(type = 'mgwfile', wso2.stream.id = 'org.wso2.x:1.0.0', @map(type = 'wso2event'))
define stream A (x int);
@source(ref='grpcSource', enable.ssl="TRUE", @map(type='protobuf'))
@Async(buffer.size = '256', workers = '1', batch.size.max = '256')
define stream B (x int);
@source(type = 'inMemory', topic = 'T')
define stream C (x int);
@info(name = 'q')
from A select x insert into O;
`)
	if err != nil {
		t.Fatal(err)
	}
	notes := Notes(app)
	want := []string{
		"3:1: stream A: @source(type='wso2event') is a declaration",
		"4:1: stream A: @source(type='mgwfile')",
		"6:1: stream B: @source(ref='grpcSource')",
		"7:1: stream B: @Async is accepted",
	}
	if len(notes) != len(want) {
		t.Fatalf("notes = %q, want %d", notes, len(want))
	}
	for i, w := range want {
		if !strings.HasPrefix(notes[i], w) {
			t.Errorf("note %d = %q, want it to start with %q", i, notes[i], w)
		}
	}
	if !strings.Contains(notes[0], "POST /v1/streams/A/events, or /v1/streams/N.A/events when other apps define A too") {
		t.Errorf("note %q does not say where events go", notes[0])
	}
}
