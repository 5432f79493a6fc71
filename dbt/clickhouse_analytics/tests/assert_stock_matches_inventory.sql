-- No unit of stock may get lost or counted twice between the inventory and dim_products.
with

products as (

    select sum(stock_on_hand) as units from {{ ref('dim_products') }}

),

inventory as (

    select sum(quantity_on_hand) as units from {{ ref('stg_source__inventory') }}

)

select
    products.units as dim_products_units,
    inventory.units as inventory_units

from products
cross join inventory
where products.units != inventory.units
