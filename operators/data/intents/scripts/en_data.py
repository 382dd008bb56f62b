# Hand-written English utterances for a subset of intents (see README).

D = {}

D["return_goods"] = ("""
I want to return this
how do I return an item
return
can I send this back
Return request for order #{oid}
I'd like to return the shoes, they just aren't my style
what's your return policy
is it too late to return something I bought 3 weeks ago
where do i start a return
i changed my mind, want to return it
can i return an opened item
retrun my order pls
how do I print a return label
Do I need the original box to return it?
I bought two and want to return one
need to send back the jacket, just not feeling it
returns
how to return a gift
can you arrange a pickup for my return
my return request got rejected, why
start a return for me
The dress looks nothing like the photos, I'd like to send it back for my money
""", """
I'd like to send back what I ordered
how does returning stuff work here
can i still return this? bought it last week
want to return order {oid}, unopened
returning an item
where's the return button
not happy with it, how do I give it back
Is there a return window for sale items?
""")

D["refund_progress"] = ("""
where is my refund
when will I get my refund
refund status
I returned the item 2 weeks ago and still no refund
my refund hasn't arrived yet
how long does a refund take
refund for order {oid} still pending
you said 5 business days, it's been 10. where's my money
has my refund been processed
refund says completed but nothing on my card
still waiting on my refnd
when do I get my money back
check my refund please
the refund is taking forever
cancelled my order, when does the money come back
refund not showing in my bank account
did you guys send the refund yet
is my refund stuck
how long until the refund hits my credit card
any update on my refund?
did the refund go to paypal or my card? can't see it
You received my return on Monday, why haven't I been refunded
""", """
still no refund???
can you tell me the status of my refund
my money hasn't been returned yet
it's been a week since my refund was approved
refund for {oid} - any news?
refund ETA?
when does the refund show up in my account
haven't seen my money come back yet
""")

D["track_logistics"] = ("""
where is my package
track my order
tracking number {trk} status
my parcel hasn't moved in 3 days
where's my stuff
can you track my package
tracking hasn't updated since Monday
package says out for delivery but nothing came
track package
where is my order {oid} right now
it says delivered but I don't have it
how do I track my shipment
which courier is delivering my package
my package is stuck in customs
trakcing info not working
the tracking page shows nothing
is my parcel lost?
package location please
where's my parcel at
shipment stuck at the sorting center
I have a tracking number but it says invalid
can you check where {trk} is
""", """
parcel whereabouts?
tracking still not updated, what's going on
my package seems stuck somewhere
can you look up tracking {trk}
I need to know where my shipment is
parcel tracking
where's my delivery for order {oid}
it's been in transit forever, where is it
""")

D["change_address"] = ("""
change my shipping address
I entered the wrong address
can I update the delivery address
wrong address on order {oid}
I moved, need to change my address
can you ship to a different address
how do I edit my address
typo in my address, please fix
change delivery address to my office
address change
the zip code is wrong
can I change the address after it shipped
I forgot to add my apartment number
update shipping address please
i put my old address by mistake
redirect my package to a new address
change recipient name and address
how to change adress
can i still change where it's going
my address is incomplete, can you add unit 5B
i need it sent to my parents' place instead
please correct the street name
""", """
need to fix my delivery address
wrong shipping address, help
can you send order {oid} to another address
I want to change where my package gets delivered
update my address
I accidentally chose my old address at checkout
address is wrong, can it be changed before shipping
the ship-to is wrong, can you edit it
""")

D["invoice"] = ("""
I need an invoice
can I get an invoice for order {oid}
how do I download my invoice
invoice please
need a VAT invoice for my company
the invoice has the wrong company name
can you resend the invoice
where can I find my receipt
i need a receipt for reimbursement
can you add my tax ID to the invoice
invoice not received
can I get a paper invoice mailed
how to request an invoice
invoce
my invoice amount is wrong
can you reissue the invoice
business invoice with my company details
Do you provide invoices?
email me the invoice
I need an itemized receipt
can the invoice be in my company's name
can't find the invoice in my account
""", """
could you issue a tax invoice
send me the invoice for my last order
where do I get my receipt
the billing name on my invoice is wrong
can I request an invoice after delivery?
need the invoice for {oid}
how can I get a VAT receipt
need invoice for expense report
""")

D["cancel_order"] = ("""
cancel my order
I want to cancel
how do I cancel an order
please cancel order {oid}
I ordered by mistake, cancel it
can I still cancel?
cancel order
cancellation
I placed a duplicate order, cancel one
how to cancel before shipping
I don't want it anymore, cancel please
found it cheaper, cancel my order
cancle my order
can I cancel a pre-order
cancel button not working
the order won't cancel
I need to cancel right away
cancel it
just cancel the whole thing
can I cancel after it's shipped
stop my order please
I changed my mind about the purchase, please cancel it
""", """
need to cancel an order
scrap order {oid}
how do I cancel something I just ordered
please kill this order, I don't need it
can this order be cancelled
i want to call off my order
cancel my purchase
accidentally ordered twice, drop the second one
""")

D["urge_shipping"] = ("""
why hasn't my order shipped yet
please ship my order asap
it's been a week and still not shipped
hurry up and ship it
can you expedite shipping
when will you ship my order
order {oid} still not shipped
I paid 5 days ago, why is it still processing
please rush my order
still waiting for it to ship
can you ship it today
I need it urgently, please send it out
your site said ships in 24h, what happened
ship it already!!
why is it taking so long to dispatch
please speed up the shipping
can you prioritize my order
it's still "awaiting shipment", come on
has no one packed my order yet? hurry
any chance it ships before friday
push my order out please
my friend ordered later and got hers already, mine hasn't even shipped
""", """
when are you guys gonna ship it
order {oid} hasn't been dispatched, please hurry
can you send my order out faster
still not shipped after a week, seriously
please get my package out the door today
need this shipped urgently
why is my order still unshipped
rush shipping on my order please
""")

D["product_inquiry"] = ("""
is this in stock
what material is this made of
is it 100% cotton
does this phone support 5G
is it waterproof
what are the dimensions
do you have it in black
is this item genuine
how long does the battery last
does it work with iPhone
when will this be back in stock
is it dishwasher safe
what's the difference between these two models
does it come with a charger
is this the latest version
can I wash it in a machine
how much does it weigh
is it suitable for sensitive skin
does the laptop have a backlit keyboard
what colors are available
is this compatible with USB-C
where is this made
""", """
do you still have this in stock
what fabric is this jacket
does it support bluetooth
is this microwave safe
how big is it
does it come in other colors
what's the capacity of this blender
is it good for kids
""")

D["coupon"] = ("""
how do I use a coupon
my coupon code isn't working
do you have any coupons
where do I enter the promo code
my coupon expired, can you give me another
why can't I use two coupons
discount code not applied
coupon
any promo codes?
the voucher says invalid
is there a first order discount code
where are my coupons
how do I claim the coupon
coupon not working at checkout
can I use a coupon on sale items
copuon didnt work
I forgot to use my coupon, can you apply it
got a 20% off code but it won't apply
do coupons stack
my voucher disappeared
send me a discount code
what's the minimum spend for this coupon
""", """
promo code not accepted
any discount vouchers available
how do I apply a coupon to my order
coupon says not applicable to this item
my coupon vanished from my account
can I get a new code, mine expired
is there a coupon for new customers
checkout page has no box for the code, where does it go
""")

D["member_points"] = ("""
how many points do I have
how do I use my points
my points didn't get added
reward points balance
do points expire
what can I redeem with my points
points missing from last order
how do I earn points
membership points
how do I become a member
why did my points go down
can points be used as cash
how many points per dollar
loyalty points
when do points show up
how to check my rewards
my points expired, can you restore them
member level upgrade
can I transfer points to my wife
points not credited for order {oid}
what are the member benefits
redeem points
""", """
check my points
where can I spend reward points
I didn't receive points for my purchase
how long until my points expire
how do I get more loyalty points
my points balance is wrong
what does my membership tier get me
points
""")

D["account_security"] = ("""
my account was hacked
someone logged into my account
I got a login alert from another country
suspicious activity on my account
someone changed my password, it wasn't me
my account is locked for security reasons
I think my account is compromised
there are orders I didn't place
how do I enable 2FA
I got a verification code I didn't request
unknown device logged in
account security
someone is using my account
how to log out of all devices
my acount got hacked
received a weird email saying my account was accessed
can you freeze my account, I think it's stolen
how to see login history
my account was frozen, why
is my account safe
got a security alert
someone accessed my account and changed my email
""", """
I think someone hacked me
strange login on my account
my account has been compromised, help
there's activity on my account I don't recognize
how do I secure my account
I got an OTP I never asked for
account got frozen for suspicious activity
can I see which devices are logged in
""")

D["reset_password"] = ("""
forgot my password
reset password
how do I change my password
I can't remember my password
password reset link not working
didn't get the password reset email
locked out after too many wrong passwords
forgot payment PIN
how do I reset my PIN
change password
i need a new password
forgot pasword
the reset code never arrives
how to recover my password
password reset
I want to update my password
can you reset my password for me
new password won't save
reset link expired
can't log in, forgot password
where is the change password option
I forgot my login password, my phone is {phone}
""", """
totally blanked on my password
my password needs resetting
how do I recover my login
password not working, I want to set a new one
what was my PIN again, need to reset it
the reset email never came
can I set a different password
pls help me reset my password
""")

D["payment_failed"] = ("""
payment failed
my payment didn't go through
card declined
can't pay for my order
checkout keeps failing
I was charged but the order says unpaid
payment error
why is my card being declined
paypal payment failed
payment page won't load
it says transaction failed
unable to complete payment
payment keeps timing out
payment not going thru
my credit card got rejected at checkout
error code when paying
money deducted but payment failed
can't pay with apple pay
OTP for payment never arrives
payment failed for order {oid}
why won't it accept my card
payment stuck on processing
""", """
my card keeps getting declined
payment isn't working
I can't complete the checkout
it charged me but says payment unsuccessful
transaction declined, why
the payment keeps failing on my end
can't pay, error says try again later
google pay not working at checkout
""")

D["damaged_goods"] = ("""
my item arrived damaged
the product is broken
received a cracked screen
the box was crushed and the item is damaged
it arrived broken
the glass was shattered
there's a hole in the shirt
product is defective
item doesn't turn on out of the box
poor quality, it fell apart
the shoes came apart after 2 days
the package was damaged
fruit arrived rotten
scratches all over it
arrived with a stain
damged item
the bottle leaked everywhere
defective product
the cake was smashed
it's broken!!
what do I do with a damaged item
the zipper broke the first time I used it
""", """
my order came broken
item was damaged in shipping
the mug is cracked
it's faulty, doesn't work
terrible quality, already ripped
received it with dents
the parcel was smashed and so is the product
the screen has dead pixels
""")

D["missing_item"] = ("""
an item is missing from my order
I only got 2 of 3 items
wrong item received
you sent me the wrong size
missing item
the free gift wasn't included
my order is incomplete
received wrong color
part of my order is missing
this isn't what I ordered
the charger was missing from the box
you sent someone else's order
only one box arrived but I ordered two
the set is missing a piece
order {oid} is missing an item
wrong product shipped
I got a blue one instead of red
missing accessories
items missing
box was short one bottle
the manual and cable aren't in the box
where's the rest of my order
""", """
you forgot one of my items
got the wrong thing
something's missing from my package
I received a different product than I ordered
size is wrong, I ordered M
the bonus gift is missing
{oid} came with stuff missing
package only had half the stuff
""")

D["repayment"] = ("""
how do I repay
repayment
when is my payment due
can I pay off early
how to set up autopay
I want to repay my loan
make a payment on my credit card
pay my balance
what's the minimum payment
can I pay with my debit card
how do I pay my credit card bill
repay in full
I paid but it still shows outstanding
partial repayment possible?
how to repay the loan early
change my due date
repay
pay back
where do I make a repayment
autopay didn't go through, how do I pay manually
can someone else pay for me
i want to settle my balance today
""", """
how can I pay back what I owe
I'd like to make a repayment
set up automatic payments
pay off my loan
when's the deadline to pay this month
can I pay part of it now
I paid, why is it still unpaid
where's the repay button
""")

D["bill_inquiry"] = ("""
check my bill
what's my statement balance
where can I see my statement
my bill hasn't come out yet
show me my transactions
last month's bill
statement details
why is my bill so high
what's my billing cycle
download my statement
bill
I didn't receive my statement
this month's bill amount
how do I view past statements
e-statement
what's this charge on my bill
my bill amount looks wrong
recent transactions please
when is my statement date
unbilled transactions
annual statement
bil inquiry
""", """
how much is my bill this month
can I see last month's statement
where do I check my transactions
my statement is missing
view my bill details
the bill doesn't match my spending
what did I spend this month
pull up my statement
""")

D["card_loss"] = ("""
I lost my card
report lost card
my credit card was stolen
how do I block my card
lost my wallet with my card in it
freeze my card, it's missing
card lost
can't find my debit card
how to report a stolen card
block card
I need to cancel my lost card
replace a lost card
someone stole my card
temporary lock on my card
lost card ending in {card4}
my card is gone
how long does a replacement card take
I left my card in a taxi
report stolen
found my card, how do I unblock it
emergency card block
card got stolen at the mall
""", """
my card has vanished
please block my stolen card
I misplaced my credit card
how do I report my card lost
bank card lost, help
my wallet was stolen
freeze card ending {card4}
need a new card, mine is lost
""")

D["complaint"] = ("""
I want to file a complaint
this service is terrible
I'm making a complaint
your agent was rude
complaint
the courier was very rude to me
I'll report you to consumer protection
this is unacceptable
how do I complain
I want to speak to a manager about a complaint
worst customer service ever
you keep ignoring my issue
I'm filing a formal complaint
I'm extremely unhappy with how this was handled
your delivery guy threw my package
how do I escalate a complaint
scam company
your staff hung up on me
I'm leaving a bad review and filing a complaint
nobody has fixed my issue in 2 weeks
complain about a seller
where do I submit a complaint
""", """
I'd like to lodge a complaint
your service is awful
the driver was disrespectful, I want to complain
this is a joke, I'm complaining
status of my complaint
I want to report this seller
absolutely disgusted with your support
you people are useless
""")

D["human_agent"] = ("""
agent
human
talk to a real person
I want to speak to a human
live agent
connect me to an agent
real person please
representative
can I talk to someone
transfer me to a human
customer service rep
I don't want a bot
speak to agent
is there a human I can chat with
get me a person
operator
human please
you're a bot, I need a person
let me talk to a live person
customer support agent
I need to speak with a real human being
stop the bot, get me someone
""", """
need an agent asap
can I get a human
I need a living breathing human
talk to someone real
put a rep on please
hook me up with an actual person
are there any humans here
can a staff member take over
""")

D["greeting"] = ("""
hi
hello
hey
good morning
good afternoon
good evening
hi there
hello hello
anyone there?
hey there
yo
hiya
howdy
greetings
hello, anyone online
hi 👋
morning
heyy
hello support
hi, is this customer service
hey, you there?
sup
""", """
hey folks
hi team
good day
hola
knock knock
what's up
hi how are you
evening all
""")

D["thanks"] = ("""
thanks
thank you
thx
thanks a lot
thank you so much
ty
appreciate it
cheers
great, thanks
thanks for your help
much appreciated
awesome thank you
perfect, thanks!
thanks 🙏
many thanks
thank u
tysm
that helped, thanks
thanks for the quick reply
ok thanks
thanks, that solves it
I really appreciate your help
""", """
you're a lifesaver
grateful for the help
cool, ty
you've been very helpful
thanks heaps
nice, thanks a ton
huge help, cheers mate
merci
""")

D["goodbye"] = ("""
bye
goodbye
see you
that's all
nothing else
bye bye
see ya
that's it for now
I'm done
have a good day
talk later
no more questions
ok bye
cya
gotta go
end chat
take care
that's everything, bye
all good, bye
good night
later
I'm all set
""", """
I'm heading out, bye
catch you later
that's all I needed
no that's it
ttyl
farewell
logging off
end the conversation
""")

D["business_hours"] = ("""
what are your business hours
when is customer service available
what time do you open
what time do you close
are you open on weekends
is support 24/7
opening hours
when can I reach a live agent
are you open today
holiday hours
what are your support hours
when does customer service close
what time does the call center open
are you available on Sunday
business hours
when are agents online
hours of operation
are you open right now
what time zone are your hours in
customer service hours on public holidays
is anyone available at night
how late is support open
""", """
when are you open
what hours is support staffed
are agents available on Saturday
what time does support start
are you open 24 hours
customer service opening times
when do your agents go offline
what time can I call you
""")

D["order_status"] = ("""
what's the status of my order
has my order shipped
order status
did my order go through
is my order confirmed
order {oid} status
check my order
what does "processing" mean on my order
my order says pending
has my order been dispatched
is my order being packed
where's my order at in the process
did you receive my order
my order disappeared from my account
order shows cancelled but I didn't cancel
what stage is my order in
has it been shipped yet
order update please
check order status for {oid}
is my order ready
my order status hasn't changed in days
order says completed, what does that mean
""", """
what's happening with my order
has order {oid} gone out yet
can you check the status of my purchase
is my order still processing
was my order placed successfully
status update on my order
my order shows "awaiting fulfillment", what does that mean
did the order go out yet
""")

D["delivery_time"] = ("""
how long does delivery take
when will it arrive
how many days to ship to Canada
delivery time
can I get it by Friday
how fast is shipping
do you offer next day delivery
when can I expect my order
estimated delivery date
how long to ship to Alaska
do you deliver on weekends
if I order today when will it arrive
same day delivery available?
how long does standard shipping take
express delivery time
can I choose a delivery time slot
how long for international delivery
will it arrive before Christmas
what's the ETA
delivery window
how soon can you deliver
how many business days for delivery
""", """
how long until I get it
when will my order be delivered
can it arrive by tomorrow
how long is shipping to the UK
what's the delivery timeframe
does express get here faster
will it be here by the weekend
expected arrival date?
""")
