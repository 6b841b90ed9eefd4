"""SQL in DuckDB's dialect rendered for Spark SQL, and the plan-time check that it can be.

sqlglot transpiles a step (DuckDB's dialect) to Spark; a few DuckDB functions sqlglot leaves
under their own name get Spark's equivalent here (``_spark_function``). What still cannot run
on Spark is found before any work (``unsupported``): a construct sqlglot refuses to render
(``unsupported_level=RAISE``) or a function Spark does not have (``SPARK_FUNCTIONS``: Spark
4.0's ``SHOW FUNCTIONS``). No PySpark import here: ``andon plan`` checks without a JVM.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable

import sqlglot
from sqlglot import TokenType, exp
from sqlglot.errors import ErrorLevel, ParseError, TokenError, UnsupportedError

from andon.engines.base import InvalidInput
from andon.engines.sql import full_match

DIALECT = "spark"

# Spark 4.0's built-in functions (``SHOW FUNCTIONS``, names only; operators left out)
_NAMES = """
    abs acos acosh add_months aes_decrypt aes_encrypt aggregate and any any_value
    approx_count_distinct approx_percentile array array_agg array_append array_compact
    array_contains array_distinct array_except array_insert array_intersect array_join array_max
    array_min array_position array_prepend array_remove array_repeat array_size array_sort
    array_union arrays_overlap arrays_zip ascii asin asinh assert_true atan atan2 atanh avg
    base64 between bigint bin binary bit_and bit_count bit_get bit_length bit_or bit_xor
    bitmap_bit_position bitmap_bucket_number bitmap_construct_agg bitmap_count bitmap_or_agg
    bool_and bool_or boolean bround btrim cardinality case cast cbrt ceil ceiling char
    char_length character_length chr coalesce collate collation collations collect_list
    collect_set concat concat_ws contains conv convert_timezone corr cos cosh cot count count_if
    count_min_sketch covar_pop covar_samp crc32 csc cume_dist curdate current_catalog
    current_database current_date current_schema current_timestamp current_timezone current_user
    date date_add date_diff date_format date_from_unix_date date_part date_sub date_trunc
    dateadd datediff datepart day dayname dayofmonth dayofweek dayofyear decimal decode degrees
    dense_rank div double e element_at elt encode endswith equal_null every exists exp explode
    explode_outer expm1 extract factorial filter find_in_set first first_value flatten float
    floor forall format_number format_string from_avro from_csv from_json from_protobuf
    from_unixtime from_utc_timestamp from_xml get get_json_object getbit greatest grouping
    grouping_id hash hex histogram_numeric hll_sketch_agg hll_sketch_estimate hll_union
    hll_union_agg hour hypot if ifnull ilike in initcap inline inline_outer
    input_file_block_length input_file_block_start input_file_name instr int is_valid_utf8
    is_variant_null isnan isnotnull isnull java_method json_array_length json_object_keys
    json_tuple kurtosis lag last last_day last_value lcase lead least left len length
    levenshtein like listagg ln localtimestamp locate log log10 log1p log2 lower lpad ltrim
    luhn_check make_date make_dt_interval make_interval make_timestamp make_timestamp_ltz
    make_timestamp_ntz make_valid_utf8 make_ym_interval map map_concat map_contains_key
    map_entries map_filter map_from_arrays map_from_entries map_keys map_values map_zip_with
    mask max max_by md5 mean median min min_by minute mod mode monotonically_increasing_id month
    monthname months_between named_struct nanvl negative next_day not now nth_value ntile nullif
    nullifzero nvl nvl2 octet_length or overlay parse_json parse_url percent_rank percentile
    percentile_approx percentile_cont percentile_disc pi pmod posexplode posexplode_outer
    position positive pow power printf quarter radians raise_error rand randn random randstr
    range rank reduce reflect regexp regexp_count regexp_extract regexp_extract_all regexp_instr
    regexp_like regexp_replace regexp_substr regr_avgx regr_avgy regr_count regr_intercept
    regr_r2 regr_slope regr_sxx regr_sxy regr_syy repeat replace reverse right rint rlike round
    row_number rpad rtrim schema_of_avro schema_of_csv schema_of_json schema_of_variant
    schema_of_variant_agg schema_of_xml sec second sentences sequence session_user
    session_window sha sha1 sha2 shiftleft shiftright shiftrightunsigned shuffle sign signum sin
    sinh size skewness slice smallint some sort_array soundex space spark_partition_id split
    split_part sql_keywords sqrt stack startswith std stddev stddev_pop stddev_samp str_to_map
    string string_agg struct substr substring substring_index sum tan tanh timestamp
    timestamp_micros timestamp_millis timestamp_seconds tinyint to_avro to_binary to_char to_csv
    to_date to_json to_number to_protobuf to_timestamp to_timestamp_ltz to_timestamp_ntz
    to_unix_timestamp to_utc_timestamp to_varchar to_variant_object to_xml transform
    transform_keys transform_values translate trim trunc try_add try_aes_decrypt try_avg
    try_divide try_element_at try_make_interval try_make_timestamp try_make_timestamp_ltz
    try_make_timestamp_ntz try_mod try_multiply try_parse_json try_parse_url try_reflect
    try_subtract try_sum try_to_binary try_to_number try_to_timestamp try_url_decode
    try_validate_utf8 try_variant_get typeof ucase unbase64 unhex uniform unix_date unix_micros
    unix_millis unix_seconds unix_timestamp upper url_decode url_encode user uuid validate_utf8
    var_pop var_samp variance variant_explode variant_explode_outer variant_get version weekday
    weekofyear when width_bucket window window_time xpath xpath_boolean xpath_double xpath_float
    xpath_int xpath_long xpath_number xpath_short xpath_string xxhash64 year zeroifnull zip_with
"""
SPARK_FUNCTIONS = frozenset(_NAMES.split())


class Unsupported(InvalidInput):
    """SQL that cannot run on Spark: ``construct`` names what, ``word`` finds it in the text,
    ``line`` is its line (in the SQL text, from 1) when known."""

    def __init__(self, construct: str, word: str = "", line: int | None = None) -> None:
        super().__init__(f"Spark has no equivalent of {construct}")
        self.construct = construct
        self.word = word
        self.line = line


_UNITS = {"to_seconds": "SECOND", "to_minutes": "MINUTE", "to_hours": "HOUR",
          "to_days": "DAY", "to_weeks": "WEEK", "to_months": "MONTH", "to_years": "YEAR"}


def _spark_function(node: exp.Expr) -> exp.Expr:
    """DuckDB constructs sqlglot renders under a name or with a meaning Spark lacks, as
    Spark's."""
    matched = full_match(node)
    if matched is not None:  # RLIKE finds; a full match is anchored
        text, pattern = matched
        whole = exp.Concat(expressions=[exp.Literal.string("^(?:"), pattern.copy(),
                                        exp.Literal.string(")$")])
        return exp.Paren(this=exp.RegexpLike(this=text.copy(), expression=whole))
    if isinstance(node, exp.Table) and isinstance(node.this, exp.GenerateSeries):
        return _range_table(node, node.this)
    if isinstance(node, exp.Anonymous) and node.name.lower() == "row":  # a tuple of values
        return exp.Anonymous(this="STRUCT", expressions=[e.copy() for e in node.expressions])
    if isinstance(node, exp.Anonymous) and node.name.lower() in _UNITS \
            and len(node.expressions) == 1:
        return exp.Anonymous(this="MAKE_DT_INTERVAL" if _UNITS[node.name.lower()] in
                             ("DAY", "HOUR", "MINUTE", "SECOND") else "MAKE_YM_INTERVAL",
                             expressions=_interval_args(node.name.lower(),
                                                        node.expressions[0].copy()))
    return node


def _range_table(table: exp.Table, series: exp.GenerateSeries) -> exp.Expression:
    """DuckDB's ``range(a, b)`` / ``generate_series(a, b)`` as a table: Spark's ``RANGE``
    (whose column is ``id``) under the alias and column name the query gives it."""
    end = series.args["end"].copy()
    if not series.args.get("is_end_exclusive"):  # generate_series includes its end
        end = exp.Add(this=end, expression=exp.Literal.number(1))
    args = [series.args["start"].copy(), end]
    if series.args.get("step") is not None:
        args.append(series.args["step"].copy())
    alias = table.args.get("alias")
    columns = alias.columns if alias is not None else []
    name = columns[0].name if columns else (
        "range" if series.args.get("is_end_exclusive") else "generate_series")
    rows = exp.select(exp.alias_(exp.column("id"), exp.to_identifier(name))).from_(
        exp.Table(this=exp.Anonymous(this="RANGE", expressions=args)))
    return rows.subquery(exp.to_identifier(alias.name if alias is not None and alias.name
                                           else "_andon_range"))


def _interval_args(unit: str, n: exp.Expression) -> list[exp.Expression]:
    """MAKE_DT_INTERVAL(days, hours, mins, secs) / MAKE_YM_INTERVAL(years, months) of ``n``
    units."""
    zero = exp.Literal.number(0)
    order = {"to_days": 0, "to_hours": 1, "to_minutes": 2, "to_seconds": 3,
             "to_years": 0, "to_months": 1}
    if unit == "to_weeks":
        return [exp.Mul(this=exp.Paren(this=n), expression=exp.Literal.number(7))]
    width = 2 if unit in ("to_years", "to_months") else 4
    args: list[exp.Expression] = [zero.copy() for _ in range(width)]
    args[order[unit]] = exp.cast(n, "INT") if width == 2 or order[unit] < 3 else n
    return args


def parse_duckdb(sql: str) -> exp.Expr:
    """One statement of DuckDB SQL (``InvalidInput`` when it does not parse)."""
    try:
        tree = sqlglot.parse_one(sql, read="duckdb")
    except ParseError as e:
        raise InvalidInput(f"the SQL does not parse: {e.errors[0]['description']}"
                           if e.errors else str(e)) from None
    except TokenError as e:
        raise InvalidInput(f"the SQL does not parse: {e}") from None
    return tree


def to_spark(query: str | exp.Expr,
             scans: Callable[[exp.Func], exp.Expression | None] | None = None) -> str:
    """SQL in DuckDB's dialect (text) or an expression, rendered for Spark SQL: each table
    function call ``scans`` maps (``read_parquet([...])`` of artifact files) becomes what it
    returns. A construct Spark has no rendering for is ``Unsupported`` naming it."""
    tree = parse_duckdb(query) if isinstance(query, str) else query.copy()
    if scans is not None:
        for call in list(tree.find_all(exp.Anonymous, exp.ReadParquet)):
            replacement = scans(call)
            if replacement is None:
                continue
            holder = call.parent if isinstance(call.parent, exp.Table) else None
            if holder is not None and holder.alias:
                replacement.set("alias", exp.TableAlias(this=exp.to_identifier(holder.alias)))
            (holder or call).replace(replacement)
    original = tree
    tree = tree.transform(_spark_function)
    try:
        text = tree.sql(dialect=DIALECT, unsupported_level=ErrorLevel.RAISE)
    except UnsupportedError as e:
        raise _locate(original, str(e)) from None
    unknown = _unknown_functions(text)
    if unknown:
        raise _locate_function(original, unknown[0])
    return text


def _unknown_functions(spark_sql: str) -> list[str]:
    """Names called as functions in Spark SQL text that Spark does not have."""
    try:
        tokens = sqlglot.tokenize(spark_sql, read=DIALECT)
    except TokenError:
        return []
    out: list[str] = []
    for tok, nxt in itertools.pairwise(tokens):
        if tok.token_type is TokenType.VAR and nxt.token_type is TokenType.L_PAREN \
                and tok.text.lower() not in SPARK_FUNCTIONS:
            out.append(tok.text.lower())
    return out


def _line_of(node: exp.Expr) -> int | None:
    line = node.meta.get("line")
    if line:
        return int(line)
    for child in node.walk():
        line = child.meta.get("line")
        if line:
            return int(line)
    return None


def _locate(tree: exp.Expr, message: str) -> Unsupported:
    """The deepest node of ``tree`` sqlglot cannot render for Spark, as ``Unsupported``."""
    found: exp.Expr | None = None
    for node in tree.walk():
        try:
            node.sql(dialect=DIALECT, unsupported_level=ErrorLevel.RAISE)
        except (UnsupportedError, ValueError):
            found = node  # walk is depth first: a later failing node is deeper
    what = message.strip().rstrip(".")
    if found is not None:
        text = found.sql(dialect="duckdb")
        word = re.match(r"\w*", text)
        return Unsupported(f"{text[:80]} ({what})", word.group(0) if word else "",
                           _line_of(found))
    return Unsupported(what)


def _locate_function(tree: exp.Expr, name: str) -> Unsupported:
    for node in tree.find_all(exp.Func):
        rendered = node.sql(dialect=DIALECT).lower()
        if re.match(re.escape(name) + r"\s*\(", rendered):
            text = node.sql(dialect="duckdb")
            word = node.name if isinstance(node, exp.Anonymous) else text.split("(")[0]
            return Unsupported(f"function {word.lower()}() (in {text[:80]})", word,
                               _line_of(node))
    return Unsupported(f"function {name}()", name)


def check_sql(sql: str) -> tuple[str, str] | None:
    """Why one SELECT in DuckDB's dialect cannot run on Spark (the construct, and a word that
    finds it in the step's text), or None when it can. For plan-time validation, before any
    work (``andon.engines.EngineKind.check_sql``)."""
    try:
        to_spark(sql)
    except Unsupported as e:
        return e.construct, e.word
    except InvalidInput:
        return None  # a syntax error is the step loader's to report
    return None
