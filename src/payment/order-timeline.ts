import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { EntityManager, Repository } from 'typeorm';
import { Clock } from '../common/clock';
import { OrderEvent } from './entities/order-event.entity';

export interface TimelineEntry {
  type: string;
  at: string;
  detail: unknown;
}

/** The order's timeline (order_events), keyed by the order's own number whatever attempt an event is about. */
@Injectable()
export class OrderTimeline {
  constructor(
    @InjectRepository(OrderEvent) private readonly events: Repository<OrderEvent>,
    private readonly clock: Clock,
  ) {}

  async record(outTradeNo: string, type: string, detail: unknown, manager?: EntityManager): Promise<void> {
    const row = { outTradeNo, type: type.slice(0, 32), detail: detail === undefined ? null : JSON.stringify(detail), createdAt: this.clock.now() };
    await (manager ? manager.insert(OrderEvent, row) : this.events.insert(row));
  }

  async list(outTradeNo: string): Promise<TimelineEntry[]> {
    const rows = await this.events.find({ where: { outTradeNo }, order: { id: 'ASC' } });
    return rows.map((e) => ({ type: e.type, at: e.createdAt.toISOString(), detail: e.detail ? JSON.parse(e.detail) : null }));
  }
}
