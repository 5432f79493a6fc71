{% test not_negative(model, column_name) %}
-- Fails on every row where the column is below zero (null passes: not_null checks that).
select {{ column_name }}
from {{ model }}
where {{ column_name }} < 0
{% endtest %}
