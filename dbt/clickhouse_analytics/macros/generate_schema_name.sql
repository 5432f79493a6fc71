{#
    Where a model is built. The layers have their own ClickHouse databases: with the default
    target schema (`default`), a model configured with `+schema: marts` lands in `marts`, as the
    course's notebooks and `course reset` expect. With any other target schema (DBT_SCHEMA=t1,
    as the tests do), it lands in `t1_marts`, so a scratch build never touches the real
    databases. Models without a custom schema go to the target schema.
#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- elif target.schema == 'default' -%}
        {{ custom_schema_name | trim }}
    {%- else -%}
        {{ target.schema }}_{{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
