package siddhiql

import (
	"fmt"
	"strings"
)

// Pos is a 1-based line and column in the app text.
type Pos struct {
	Line, Col int
}

// String writes the position as line:column.
func (p Pos) String() string { return fmt.Sprintf("%d:%d", p.Line, p.Col) }

// Type is an attribute type of a stream.
type Type uint8

// Attribute types, as SiddhiQL names them.
const (
	TypeInvalid Type = iota
	TypeString
	TypeInt
	TypeLong
	TypeFloat
	TypeDouble
	TypeBool
	TypeObject
)

var typeNames = [...]string{"invalid", "string", "int", "long", "float", "double", "bool", "object"}

// String is the type's SiddhiQL name (string, int, ...).
func (t Type) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

// Upper is the type's name in Siddhi's upper-case spelling (STRING, LONG, ...), as the store
// API's "details" and error messages use it.
func (t Type) Upper() string { return strings.ToUpper(t.String()) }

// Numeric reports whether t is int, long, float or double.
func (t Type) Numeric() bool {
	return t == TypeInt || t == TypeLong || t == TypeFloat || t == TypeDouble
}

// App is a parsed SiddhiQL app. Definitions and queries keep their order in the text.
type App struct {
	// Name comes from @app:name('...'); empty when the app has none.
	Name string
	// Annotations are the app-level annotations (@app:name, @app:description, ...).
	Annotations  []*Annotation
	Streams      []*StreamDef
	Aggregations []*AggregationDef
	Queries      []*Query
	// Triggers are the `define trigger` definitions, in text order.
	Triggers []*TriggerDef
	// Partitions are the `partition with` blocks, in text order.
	Partitions []*Partition
	// Tables are the `define table` definitions (parse_table.go).
	Tables []*TableDef
}

// Annotation is @name or @name(elements...). Names keep their spelling; a namespaced name
// such as @app:name is stored as "app:name". Nested annotations (@retentionPeriod inside
// @purge, @map inside @sink) are in Annotations.
type Annotation struct {
	Pos         Pos
	Name        string
	Elements    []Element
	Annotations []*Annotation
}

// Element is one key='value' (or positional 'value', Key empty) inside an annotation.
type Element struct {
	Pos   Pos
	Key   string
	Value string
}

// Attribute is one name and type in a stream definition.
type Attribute struct {
	Pos  Pos
	Name string
	Type Type
}

// Strategy is how a stream's events are spread over partition groups.
type Strategy uint8

// Routing strategies, in Siddhi's distributed-sink vocabulary.
const (
	// RoundRobin is the default: events go to any group (Siddhi's active-active deployment).
	RoundRobin Strategy = iota
	// Partitioned sends every event with the same partition key to the same group.
	Partitioned
	// Broadcast sends every event to every group.
	Broadcast
)

// String is the strategy as @distribution spells it.
func (s Strategy) String() string {
	switch s {
	case Partitioned:
		return "partitioned"
	case Broadcast:
		return "broadcast"
	default:
		return "roundRobin"
	}
}

// Routing is a stream's @distribution annotation.
type Routing struct {
	Strategy     Strategy
	PartitionKey string // set only for Partitioned; names an attribute of the stream
}

// StreamDef is `define stream Name (attr type, ...)`.
type StreamDef struct {
	Pos         Pos
	Name        string
	Attributes  []Attribute
	Annotations []*Annotation
	Routing     Routing
}

// Duration is a granularity of an incremental aggregation.
type Duration uint8

// Aggregation granularities, finest first.
const (
	Seconds Duration = iota
	Minutes
	Hours
	Days
	Months
	Years
)

// AllDurations lists every granularity, finest first.
var AllDurations = []Duration{Seconds, Minutes, Hours, Days, Months, Years}

var durationNames = [...]string{"SECONDS", "MINUTES", "HOURS", "DAYS", "MONTHS", "YEARS"}

// String is the table suffix Siddhi uses: SECONDS, MINUTES, HOURS, DAYS, MONTHS, YEARS.
func (d Duration) String() string {
	if int(d) < len(durationNames) {
		return durationNames[d]
	}
	return fmt.Sprintf("duration(%d)", uint8(d))
}

// AggregationDef is `define aggregation`.
type AggregationDef struct {
	Pos         Pos
	Name        string
	Annotations []*Annotation
	From        string
	// Filter is the optional `[cond]` after the input stream; nil when absent.
	Filter Expr
	// Select is the select list; `select *` is not allowed in an aggregation.
	Select  []OutputAttr
	GroupBy []*Variable
	// AggregateBy names the event-time attribute of `aggregate by attr`; empty means arrival time.
	AggregateBy string
	// Durations are the granularities, sorted finest first, without duplicates.
	Durations []Duration
	// Purge is the parsed @purge annotation, with Siddhi's defaults filled in. Never nil.
	Purge *Purge
	// PartitionByID is set by @PartitionById (bare or enable='true').
	PartitionByID bool
	// Store is the @store annotation, or nil (in-memory tables).
	Store *Annotation
	// FieldLengths is the @store field.length option, in the order written.
	FieldLengths []FieldLength
	// ReadOnly is @persistedAggregation(is.read.only='true') (parse_aggjoin.go): the app
	// aggregates nothing itself and reads the rows of the same-named aggregation of another app.
	ReadOnly bool
}

// RetainAll marks a granularity whose rows are kept forever ('all').
const RetainAll int64 = -1

// Purge is an aggregation's retention policy (@purge with @retentionPeriod).
type Purge struct {
	Enable bool
	// IntervalMillis is how often purging runs; default 15 min.
	IntervalMillis int64
	// Retention per granularity in milliseconds, or RetainAll. Every granularity of the
	// aggregation has an entry, defaults filled in.
	Retention map[Duration]int64
}

// OutputEvents says which events a query inserts into its output stream.
type OutputEvents uint8

// Output event kinds, as in `insert [current|expired|all] events into`.
const (
	CurrentEvents OutputEvents = iota
	ExpiredEvents
	AllEvents
)

// String is the event kind as `insert ... events` spells it.
func (o OutputEvents) String() string {
	switch o {
	case ExpiredEvents:
		return "expired"
	case AllEvents:
		return "all"
	default:
		return "current"
	}
}

// Window is `#window.name(args...)`.
type Window struct {
	Pos  Pos
	Name string
	Args []Expr
}

// OutputAttr is one item of a select list: an expression and its `as` alias. Alias is
// empty for a plain variable without `as`; OutputName gives the effective name.
type OutputAttr struct {
	Pos   Pos
	Expr  Expr
	Alias string
}

// OutputName is the alias, or the variable's name when the expression is a bare variable.
func (o OutputAttr) OutputName() string {
	if o.Alias != "" {
		return o.Alias
	}
	if v, ok := o.Expr.(*Variable); ok {
		return v.Name
	}
	return ""
}

// Query is a streaming query:
// `from S[filter]#window.X(..)[filter] select .. group by .. having .. insert [..] events into Out;`
type Query struct {
	Pos         Pos
	Annotations []*Annotation
	// Name comes from @info(name='...'); empty when absent.
	Name       string
	From       string
	Filter     Expr        // before the window; nil when absent
	StreamFunc *StreamFunc // before the window (parse_streamfunc.go); nil when absent
	Window     *Window     // nil when the query has none
	PostFilter Expr        // filter after the window; nil when absent
	// SelectAll is `select *` (or no select clause); then Select is empty.
	SelectAll bool
	Select    []OutputAttr
	GroupBy   []*Variable
	Having    Expr
	Output    OutputEvents
	Into      string
	// Rate is the output clause (`output last every 1 min`); nil when absent.
	Rate *OutputRate
	// Join is set for a join query (parse_join.go); From is then its left input.
	Join *Join
	// TableOp is set for `update`, `update or insert into` and `delete` outputs into the
	// table named by Into (parse_table.go); nil for `insert into`.
	TableOp *TableOp
	// Order is `order by`, `limit` and `offset` of a join (parse_aggjoin.go); nil when absent.
	Order *QueryOrder
}

// OrderKey is one `order by` item.
type OrderKey struct {
	Var  *Variable
	Desc bool
}

// StoreQuery is an on-demand query against an aggregation (Siddhi's store query):
// `from Agg [on cond] within A[, B] per P select ... [group by] [having] [order by] [limit] [offset]`.
type StoreQuery struct {
	Pos  Pos
	From string
	// Alias is the `as` name of the aggregation (`from TradeAgg as T`); empty when absent.
	Alias string
	On    Expr // nil when absent
	// WithinStart and WithinEnd are the within bounds; WithinEnd is nil for the one-value pattern form.
	WithinStart Expr
	WithinEnd   Expr
	Per         Expr
	SelectAll   bool
	Select      []OutputAttr
	GroupBy     []*Variable
	Having      Expr
	OrderBy     []OrderKey
	Limit       Expr // nil when absent
	Offset      Expr // nil when absent
}

// Expr is an expression node: *Literal, *Variable, *Binary, *Unary or *Call.
type Expr interface {
	Position() Pos
	exprNode()
}

// Literal is a constant. Time literals (`1 min`, `500 millisec`) are TypeLong milliseconds
// with Time set.
type Literal struct {
	Pos   Pos
	Type  Type // TypeString, TypeInt, TypeLong, TypeFloat, TypeDouble or TypeBool
	Str   string
	Int   int64 // TypeInt and TypeLong
	Float float64
	Bool  bool
	Time  bool
}

// Variable is an attribute reference, optionally qualified (`S.price`).
type Variable struct {
	Pos    Pos
	Stream string
	Name   string
}

// Op is a binary or unary operator.
type Op uint8

// Operators, by precedence group.
const (
	OpInvalid Op = iota
	OpAdd
	OpSub
	OpMul
	OpDiv
	OpMod
	OpEq
	OpNe
	OpLt
	OpLe
	OpGt
	OpGe
	OpAnd
	OpOr
	OpNot // unary
	OpNeg // unary minus
)

var opNames = [...]string{"?", "+", "-", "*", "/", "%", "==", "!=", "<", "<=", ">", ">=", "and", "or", "not", "-"}

// String is the operator as SiddhiQL writes it.
func (o Op) String() string {
	if int(o) < len(opNames) {
		return opNames[o]
	}
	return "?"
}

// Binary is L op R.
type Binary struct {
	Pos  Pos
	Op   Op
	L, R Expr
}

// Unary is `not X` or `-X`.
type Unary struct {
	Pos Pos
	Op  Op
	X   Expr
}

// Call is a function call such as sum(x), count(), avg(price). Namespace is set for
// namespaced calls (`str:concat`), which the engine may reject.
type Call struct {
	Pos       Pos
	Namespace string
	Name      string
	Args      []Expr
}

// Position returns where the literal starts (the '-' of a negative number).
func (e *Literal) Position() Pos { return e.Pos }

// Position returns where the variable starts (the stream name when qualified).
func (e *Variable) Position() Pos { return e.Pos }

// Position returns the operator's position.
func (e *Binary) Position() Pos { return e.Pos }

// Position returns the operator's position.
func (e *Unary) Position() Pos { return e.Pos }

// Position returns where the function name (or its namespace) starts.
func (e *Call) Position() Pos { return e.Pos }

func (*Literal) exprNode()  {}
func (*Variable) exprNode() {}
func (*Binary) exprNode()   {}
func (*Unary) exprNode()    {}
func (*Call) exprNode()     {}

// Error is a parse or validation error at a position in the app text.
type Error struct {
	Pos Pos
	Msg string
}

// Error formats the error as "siddhiql: line:col: message".
func (e *Error) Error() string {
	return fmt.Sprintf("siddhiql: %d:%d: %s", e.Pos.Line, e.Pos.Col, e.Msg)
}
