{% test unique_combination_of_columns(model, combination_of_columns) %}
-- Fails on every combination of the columns that occurs more than once (the project's own
-- version of dbt_utils' test, so the project needs no package download).
{%- set columns = combination_of_columns | join(', ') %}
select
    {{ columns }},
    count() as occurrences
from {{ model }}
group by {{ columns }}
having occurrences > 1
{% endtest %}
