import { ArgumentMetadata, HttpStatus, ValidationPipe } from '@nestjs/common';
import { CreateOrderDto, OrderItemInputDto } from '../payment/dto/order.dto';
import { AppError } from './errors/app-error';
import { FAST_VALIDATE, createValidationPipe } from './validation';

const body: ArgumentMetadata = { type: 'body', metatype: CreateOrderDto, data: '' };
const item = (productId: unknown, quantity: unknown) => ({ productId, quantity });

/** What the global pipe answered before the hand-written check existed: class-transformer + class-validator only. */
async function outcome(pipe: ValidationPipe, value: unknown): Promise<unknown> {
  try {
    const dto = (await pipe.transform(structuredClone(value), body)) as CreateOrderDto;
    return { ok: dto instanceof CreateOrderDto && dto.items.every((line) => line instanceof OrderItemInputDto), dto: JSON.parse(JSON.stringify(dto)) };
  } catch (error) {
    expect(error).toBeInstanceOf(AppError);
    const app = error as AppError;
    return { status: app.status, code: app.code, message: app.message, details: app.details };
  }
}

describe('the global validation pipe with the hand-written CreateOrderDto check', () => {
  const fast = createValidationPipe();
  // The same options, with the DTO's check hidden: plain ValidationPipe behaviour.
  const slow = createValidationPipe();
  const hide = <T>(run: () => Promise<T>): Promise<T> => {
    const check = CreateOrderDto[FAST_VALIDATE];
    Object.defineProperty(CreateOrderDto, FAST_VALIDATE, { value: undefined, configurable: true });
    return run().finally(() => Object.defineProperty(CreateOrderDto, FAST_VALIDATE, { value: check, configurable: true }));
  };

  const cases: Array<[string, unknown]> = [
    ['one item', { items: [item(1, 1)] }],
    ['twenty items, quantity 99', { items: Array.from({ length: 20 }, (_, i) => item(i + 1, 99)) }],
    ['21 items', { items: Array.from({ length: 21 }, (_, i) => item(i + 1, 1)) }],
    ['quantity 0', { items: [item(1, 0)] }],
    ['quantity 100', { items: [item(1, 100)] }],
    ['quantity 1.5', { items: [item(1, 1.5)] }],
    ['productId 0', { items: [item(0, 1)] }],
    ['productId "1"', { items: [item('1', 1)] }],
    ['quantity null', { items: [item(1, null)] }],
    ['no quantity', { items: [{ productId: 1 }] }],
    ['an extra item field', { items: [{ productId: 1, quantity: 1, price: 1 }] }],
    ['an extra field', { items: [item(1, 1)], total: 1 }],
    ['a __proto__ field', JSON.parse('{"items":[{"productId":1,"quantity":1}],"__proto__":{"x":1}}')],
    ['an item __proto__ field', JSON.parse('{"items":[{"productId":1,"quantity":1,"__proto__":{"x":1}}]}')],
    ['no items', {}],
    ['an empty cart', { items: [] }],
    ['items a string', { items: 'mug' }],
    ['an item that is a number', { items: [1] }],
    ['an item that is null', { items: [null] }],
    ['an item that is a list', { items: [[1, 1]] }],
    ['a body that is a list', [item(1, 1)]],
    ['no body', undefined],
    ['a null body', null],
    ['a string body', 'items'],
  ];

  it.each(cases)('%s: the same answer as class-validator alone', async (_name, value) => {
    const expected = await hide(() => outcome(slow, value));
    expect(await outcome(fast, value)).toEqual(expected);
  });

  it('takes the hand-written path only for bodies class-validator accepts', async () => {
    for (const [, value] of cases) {
      const quick = CreateOrderDto[FAST_VALIDATE](structuredClone(value));
      if (quick === undefined) continue;
      const expected = (await hide(() => outcome(slow, value))) as { ok?: boolean; dto?: unknown };
      expect(expected.ok).toBe(true);
      expect(JSON.parse(JSON.stringify(quick))).toEqual(expected.dto);
    }
    expect(CreateOrderDto[FAST_VALIDATE]({ items: [item(3, 2)] })).toBeInstanceOf(CreateOrderDto);
    const refused = (await outcome(fast, { items: [item(1, 100)] })) as { status: number; message: string };
    expect(refused.status).toBe(HttpStatus.BAD_REQUEST);
    expect(refused.message).toContain('quantity must be at most 99');
  });
});
