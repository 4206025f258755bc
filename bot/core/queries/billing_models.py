"""Tables of the local billing data store (demo data, or a nightly copy of the real system)."""

from __future__ import annotations

from sqlalchemy import Column, Date, ForeignKey, Integer, String, UniqueConstraint

from bot.core.db import Base


class BillingAccount(Base):
    """A customer account (用电户号)."""

    __tablename__ = "billing_accounts"

    account_no = Column(String(16), primary_key=True)
    customer_name = Column(String(64), nullable=False)
    address = Column(String(255))
    customer_type = Column(String(8), nullable=False)  # 居民 / 非居民
    phone = Column(String(20))  # the contact phone on file, digits only


class BillRecord(Base):
    """One monthly bill of an account."""

    __tablename__ = "bills"
    __table_args__ = (UniqueConstraint("account_no", "month"),)

    id = Column(Integer, primary_key=True)
    # Indexed by the (account_no, month) unique constraint.
    account_no = Column(String(16), ForeignKey("billing_accounts.account_no"), nullable=False)
    month = Column(String(7), nullable=False)  # YYYY-MM
    # Whole kWh as on the bill; money in fen (分), integers so SQLite stores it exactly.
    usage_kwh = Column(Integer, nullable=False)
    amount_fen = Column(Integer, nullable=False)
    paid_fen = Column(Integer, nullable=False)
    due_date = Column(Date, nullable=False)
