package partition

import (
	"strings"
	"testing"

	"github.com/tally-db/tally/siddhiql"
)

func TestCheckApp_MarkovChain(t *testing.T) {
	app, err := siddhiql.Parse(`@app:name('A')
@distribution(strategy='partitioned', partitionKey='id')
define stream S (id string, st string);
@info(name='pattern')
from S#markov:markovChain(id, st, 60 min, 0.2, 5) select id, notify insert into O;
`)
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckApp(app, 1); err != nil {
		t.Errorf("one group: %v", err)
	}
	err = CheckApp(app, 2)
	if err == nil || !strings.Contains(err.Error(), "5:8: query 1 (pattern) uses #markov:markovChain") {
		t.Errorf("two groups: err = %v", err)
	}
}
