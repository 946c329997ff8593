"""clients, workforce (workers, hours, time off, teams) and catalog (services, add-ons, discounts)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""
from __future__ import annotations

import advanced_alchemy.types
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from spotless.db.rls import enable_tenant_rls

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

TENANT_TABLES = (
    "client", "client_address", "worker", "working_hours", "time_off", "team", "team_member",
    "service", "service_addon", "frequency_discount",
)


def upgrade() -> None:
    op.create_table('client',
    sa.Column('id', advanced_alchemy.types.guid.GUID(length=16), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('email', postgresql.CITEXT(), nullable=True),
    sa.Column('phone', sa.String(length=40), nullable=True),
    sa.Column('notes', sa.Text(), nullable=True),
    sa.Column('tags', postgresql.ARRAY(sa.Text()), server_default=sa.text("'{}'"), nullable=False),
    sa.Column('blocked', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('blocked_reason', sa.Text(), nullable=True),
    sa.Column('archived_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('org_id', advanced_alchemy.types.guid.GUID(length=16), nullable=False),
    sa.Column('sa_orm_sentinel', sa.Integer(), nullable=True),
    sa.Column('created_at', advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=False),
    sa.Column('updated_at', advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['organization.id'], name=op.f('fk_client_org_id_organization'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_client'))
    )
    op.create_index(op.f('ix_client_org_id'), 'client', ['org_id'], unique=False)
    op.create_index('ix_client_org_id_name', 'client', ['org_id', 'name'], unique=False)
    op.create_index('ix_client_tags', 'client', ['tags'], unique=False, postgresql_using='gin')
    op.create_table('frequency_discount',
    sa.Column('id', advanced_alchemy.types.guid.GUID(length=16), nullable=False),
    sa.Column('frequency', sa.String(length=16), nullable=False),
    sa.Column('discount_bps', sa.Integer(), nullable=False),
    sa.Column('org_id', advanced_alchemy.types.guid.GUID(length=16), nullable=False),
    sa.Column('sa_orm_sentinel', sa.Integer(), nullable=True),
    sa.Column('created_at', advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=False),
    sa.Column('updated_at', advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=False),
    sa.CheckConstraint("frequency IN ('weekly', 'biweekly', 'monthly')", name=op.f('ck_frequency_discount_frequency_known')),
    sa.CheckConstraint('discount_bps BETWEEN 0 AND 10000', name=op.f('ck_frequency_discount_discount_range')),
    sa.ForeignKeyConstraint(['org_id'], ['organization.id'], name=op.f('fk_frequency_discount_org_id_organization'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_frequency_discount')),
    sa.UniqueConstraint('org_id', 'frequency', name='uq_frequency_discount_org_id_frequency')
    )
    op.create_index(op.f('ix_frequency_discount_org_id'), 'frequency_discount', ['org_id'], unique=False)
    op.create_table('service',
    sa.Column('id', advanced_alchemy.types.guid.GUID(length=16), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('pricing_mode', sa.String(length=16), server_default=sa.text("'rooms'"), nullable=False),
    sa.Column('base_price_cents', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('base_minutes', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('price_per_bedroom_cents', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('minutes_per_bedroom', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('price_per_bathroom_cents', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('minutes_per_bathroom', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('price_per_100_sqft_cents', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('minutes_per_100_sqft', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('active', sa.Boolean(), server_default=sa.text('true'), nullable=False),
    sa.Column('org_id', advanced_alchemy.types.guid.GUID(length=16), nullable=False),
    sa.Column('sa_orm_sentinel', sa.Integer(), nullable=True),
    sa.Column('created_at', advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=False),
    sa.Column('updated_at', advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=False),
    sa.CheckConstraint("pricing_mode IN ('rooms', 'square_feet')", name=op.f('ck_service_pricing_mode_known')),
    sa.CheckConstraint('base_minutes >= 0 AND minutes_per_bedroom >= 0 AND minutes_per_bathroom >= 0 AND minutes_per_100_sqft >= 0', name=op.f('ck_service_minutes_not_negative')),
    sa.CheckConstraint('base_price_cents >= 0 AND price_per_bedroom_cents >= 0 AND price_per_bathroom_cents >= 0 AND price_per_100_sqft_cents >= 0', name=op.f('ck_service_prices_not_negative')),
    sa.ForeignKeyConstraint(['org_id'], ['organization.id'], name=op.f('fk_service_org_id_organization'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_service')),
    sa.UniqueConstraint('org_id', 'name', name='uq_service_org_id_name')
    )
    op.create_index(op.f('ix_service_org_id'), 'service', ['org_id'], unique=False)
    op.create_table('team',
    sa.Column('id', advanced_alchemy.types.guid.GUID(length=16), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('org_id', advanced_alchemy.types.guid.GUID(length=16), nullable=False),
    sa.Column('sa_orm_sentinel', sa.Integer(), nullable=True),
    sa.Column('created_at', advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=False),
    sa.Column('updated_at', advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['organization.id'], name=op.f('fk_team_org_id_organization'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_team')),
    sa.UniqueConstraint('org_id', 'name', name='uq_team_org_id_name')
    )
    op.create_index(op.f('ix_team_org_id'), 'team', ['org_id'], unique=False)
    op.create_table('worker',
    sa.Column('id', advanced_alchemy.types.guid.GUID(length=16), nullable=False),
    sa.Column('user_id', advanced_alchemy.types.guid.GUID(length=16), nullable=True),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('phone', sa.String(length=40), nullable=True),
    sa.Column('email', postgresql.CITEXT(), nullable=True),
    sa.Column('skills', postgresql.ARRAY(sa.Text()), server_default=sa.text("'{}'"), nullable=False),
    sa.Column('hourly_rate_cents', sa.Integer(), nullable=True),
    sa.Column('active', sa.Boolean(), server_default=sa.text('true'), nullable=False),
    sa.Column('org_id', advanced_alchemy.types.guid.GUID(length=16), nullable=False),
    sa.Column('sa_orm_sentinel', sa.Integer(), nullable=True),
    sa.Column('created_at', advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=False),
    sa.Column('updated_at', advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=False),
    sa.CheckConstraint('hourly_rate_cents IS NULL OR hourly_rate_cents >= 0', name=op.f('ck_worker_hourly_rate_not_negative')),
    sa.ForeignKeyConstraint(['org_id'], ['organization.id'], name=op.f('fk_worker_org_id_organization'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_worker_user_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_worker')),
    sa.UniqueConstraint('org_id', 'user_id', name='uq_worker_org_id_user_id')
    )
    op.create_index(op.f('ix_worker_org_id'), 'worker', ['org_id'], unique=False)
    op.create_index('ix_worker_org_id_name', 'worker', ['org_id', 'name'], unique=False)
    op.create_index(op.f('ix_worker_user_id'), 'worker', ['user_id'], unique=False)
    op.create_table('client_address',
    sa.Column('id', advanced_alchemy.types.guid.GUID(length=16), nullable=False),
    sa.Column('client_id', advanced_alchemy.types.guid.GUID(length=16), nullable=False),
    sa.Column('label', sa.String(length=100), nullable=True),
    sa.Column('line1', sa.String(length=200), nullable=False),
    sa.Column('line2', sa.String(length=200), nullable=True),
    sa.Column('city', sa.String(length=100), nullable=False),
    sa.Column('region', sa.String(length=100), nullable=True),
    sa.Column('postal_code', sa.String(length=20), nullable=True),
    sa.Column('country', sa.String(length=2), nullable=False),
    sa.Column('notes', sa.Text(), nullable=True),
    sa.Column('bedrooms', sa.Integer(), nullable=True),
    sa.Column('bathrooms', sa.Integer(), nullable=True),
    sa.Column('square_feet', sa.Integer(), nullable=True),
    sa.Column('archived_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('org_id', advanced_alchemy.types.guid.GUID(length=16), nullable=False),
    sa.Column('sa_orm_sentinel', sa.Integer(), nullable=True),
    sa.Column('created_at', advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=False),
    sa.Column('updated_at', advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=False),
    sa.CheckConstraint('bathrooms IS NULL OR bathrooms >= 0', name=op.f('ck_client_address_bathrooms_not_negative')),
    sa.CheckConstraint('bedrooms IS NULL OR bedrooms >= 0', name=op.f('ck_client_address_bedrooms_not_negative')),
    sa.CheckConstraint('square_feet IS NULL OR square_feet >= 0', name=op.f('ck_client_address_square_feet_not_negative')),
    sa.ForeignKeyConstraint(['client_id'], ['client.id'], name=op.f('fk_client_address_client_id_client'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_id'], ['organization.id'], name=op.f('fk_client_address_org_id_organization'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_client_address'))
    )
    op.create_index(op.f('ix_client_address_client_id'), 'client_address', ['client_id'], unique=False)
    op.create_index(op.f('ix_client_address_org_id'), 'client_address', ['org_id'], unique=False)
    op.create_table('service_addon',
    sa.Column('id', advanced_alchemy.types.guid.GUID(length=16), nullable=False),
    sa.Column('service_id', advanced_alchemy.types.guid.GUID(length=16), nullable=True),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('price_cents', sa.Integer(), nullable=False),
    sa.Column('minutes', sa.Integer(), nullable=False),
    sa.Column('active', sa.Boolean(), server_default=sa.text('true'), nullable=False),
    sa.Column('org_id', advanced_alchemy.types.guid.GUID(length=16), nullable=False),
    sa.Column('sa_orm_sentinel', sa.Integer(), nullable=True),
    sa.Column('created_at', advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=False),
    sa.Column('updated_at', advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=False),
    sa.CheckConstraint('minutes >= 0', name=op.f('ck_service_addon_minutes_not_negative')),
    sa.CheckConstraint('price_cents >= 0', name=op.f('ck_service_addon_price_not_negative')),
    sa.ForeignKeyConstraint(['org_id'], ['organization.id'], name=op.f('fk_service_addon_org_id_organization'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['service_id'], ['service.id'], name=op.f('fk_service_addon_service_id_service'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_service_addon'))
    )
    op.create_index(op.f('ix_service_addon_org_id'), 'service_addon', ['org_id'], unique=False)
    op.create_index(op.f('ix_service_addon_service_id'), 'service_addon', ['service_id'], unique=False)
    op.create_table('team_member',
    sa.Column('id', advanced_alchemy.types.guid.GUID(length=16), nullable=False),
    sa.Column('team_id', advanced_alchemy.types.guid.GUID(length=16), nullable=False),
    sa.Column('worker_id', advanced_alchemy.types.guid.GUID(length=16), nullable=False),
    sa.Column('org_id', advanced_alchemy.types.guid.GUID(length=16), nullable=False),
    sa.Column('sa_orm_sentinel', sa.Integer(), nullable=True),
    sa.Column('created_at', advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=False),
    sa.Column('updated_at', advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['organization.id'], name=op.f('fk_team_member_org_id_organization'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['team_id'], ['team.id'], name=op.f('fk_team_member_team_id_team'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['worker_id'], ['worker.id'], name=op.f('fk_team_member_worker_id_worker'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_team_member')),
    sa.UniqueConstraint('org_id', 'team_id', 'worker_id', name='uq_team_member_team_worker')
    )
    op.create_index(op.f('ix_team_member_org_id'), 'team_member', ['org_id'], unique=False)
    op.create_index(op.f('ix_team_member_team_id'), 'team_member', ['team_id'], unique=False)
    op.create_index(op.f('ix_team_member_worker_id'), 'team_member', ['worker_id'], unique=False)
    op.create_table('time_off',
    sa.Column('id', advanced_alchemy.types.guid.GUID(length=16), nullable=False),
    sa.Column('worker_id', advanced_alchemy.types.guid.GUID(length=16), nullable=False),
    sa.Column('starts_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ends_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('org_id', advanced_alchemy.types.guid.GUID(length=16), nullable=False),
    sa.Column('sa_orm_sentinel', sa.Integer(), nullable=True),
    sa.Column('created_at', advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=False),
    sa.Column('updated_at', advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=False),
    sa.CheckConstraint('ends_at > starts_at', name=op.f('ck_time_off_ends_after_starts')),
    sa.ForeignKeyConstraint(['org_id'], ['organization.id'], name=op.f('fk_time_off_org_id_organization'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['worker_id'], ['worker.id'], name=op.f('fk_time_off_worker_id_worker'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_time_off'))
    )
    op.create_index(op.f('ix_time_off_org_id'), 'time_off', ['org_id'], unique=False)
    op.create_index('ix_time_off_worker_id_starts_at', 'time_off', ['worker_id', 'starts_at'], unique=False)
    op.create_table('working_hours',
    sa.Column('id', advanced_alchemy.types.guid.GUID(length=16), nullable=False),
    sa.Column('worker_id', advanced_alchemy.types.guid.GUID(length=16), nullable=False),
    sa.Column('weekday', sa.SmallInteger(), nullable=False),
    sa.Column('start_time', sa.Time(), nullable=False),
    sa.Column('end_time', sa.Time(), nullable=False),
    sa.Column('org_id', advanced_alchemy.types.guid.GUID(length=16), nullable=False),
    sa.Column('sa_orm_sentinel', sa.Integer(), nullable=True),
    sa.Column('created_at', advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=False),
    sa.Column('updated_at', advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=False),
    sa.CheckConstraint('end_time > start_time', name=op.f('ck_working_hours_end_after_start')),
    sa.CheckConstraint('weekday BETWEEN 0 AND 6', name=op.f('ck_working_hours_weekday_range')),
    sa.ForeignKeyConstraint(['org_id'], ['organization.id'], name=op.f('fk_working_hours_org_id_organization'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['worker_id'], ['worker.id'], name=op.f('fk_working_hours_worker_id_worker'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_working_hours')),
    sa.UniqueConstraint('org_id', 'worker_id', 'weekday', 'start_time', name='uq_working_hours_slot')
    )
    op.create_index(op.f('ix_working_hours_org_id'), 'working_hours', ['org_id'], unique=False)
    op.create_index(op.f('ix_working_hours_worker_id'), 'working_hours', ['worker_id'], unique=False)
    # Every table here is tenant data: the app role sees only the current organisation's rows.
    for table in TENANT_TABLES:
        enable_tenant_rls(op, table)


def downgrade() -> None:
    op.drop_index(op.f('ix_working_hours_worker_id'), table_name='working_hours')
    op.drop_index(op.f('ix_working_hours_org_id'), table_name='working_hours')
    op.drop_table('working_hours')
    op.drop_index('ix_time_off_worker_id_starts_at', table_name='time_off')
    op.drop_index(op.f('ix_time_off_org_id'), table_name='time_off')
    op.drop_table('time_off')
    op.drop_index(op.f('ix_team_member_worker_id'), table_name='team_member')
    op.drop_index(op.f('ix_team_member_team_id'), table_name='team_member')
    op.drop_index(op.f('ix_team_member_org_id'), table_name='team_member')
    op.drop_table('team_member')
    op.drop_index(op.f('ix_service_addon_service_id'), table_name='service_addon')
    op.drop_index(op.f('ix_service_addon_org_id'), table_name='service_addon')
    op.drop_table('service_addon')
    op.drop_index(op.f('ix_client_address_org_id'), table_name='client_address')
    op.drop_index(op.f('ix_client_address_client_id'), table_name='client_address')
    op.drop_table('client_address')
    op.drop_index(op.f('ix_worker_user_id'), table_name='worker')
    op.drop_index('ix_worker_org_id_name', table_name='worker')
    op.drop_index(op.f('ix_worker_org_id'), table_name='worker')
    op.drop_table('worker')
    op.drop_index(op.f('ix_team_org_id'), table_name='team')
    op.drop_table('team')
    op.drop_index(op.f('ix_service_org_id'), table_name='service')
    op.drop_table('service')
    op.drop_index(op.f('ix_frequency_discount_org_id'), table_name='frequency_discount')
    op.drop_table('frequency_discount')
    op.drop_index('ix_client_tags', table_name='client', postgresql_using='gin')
    op.drop_index('ix_client_org_id_name', table_name='client')
    op.drop_index(op.f('ix_client_org_id'), table_name='client')
    op.drop_table('client')
