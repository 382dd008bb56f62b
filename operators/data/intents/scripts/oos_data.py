# Out-of-scope utterances: nothing in the 42-intent label set covers these.
# Used only to check that classifier confidence falls below the handoff threshold.

ZH = """
今天天气怎么样
明天会下雨吗
讲个笑话
给我推荐几只股票
帮我写作业
这道数学题怎么做：3x+5=20
asdfgh
😂
🐶
🍉🍉🍉
你叫什么名字
你是男的还是女的
你多大了
今晚吃什么
推荐一部电影
唱首歌给我听
帮我写一首诗
北京到上海高铁票多少钱
周杰伦新歌叫什么
世界上最高的山是哪座
1+1等于几
你喜欢我吗
我好无聊
陪我聊聊天
我失恋了
比特币还会涨吗
基金买哪个好
帮我翻译一下 hello world
中国有多少人口
怎么减肥
猫为什么喜欢钻纸箱
明天星期几
现在几点了
帮我点个外卖
附近有什么好吃的
帮我算一下 123*456
qwerty
jjjjjjj
。。。。。。
？？？
哈哈哈哈哈
嗯
呃
啊啊啊啊
你会做饭吗
地球是圆的吗
帮我写个Python脚本
给我讲个鬼故事
今天A股行情怎么样
彩票号码推荐一组
我想养一只猫，什么品种好
昨晚的足球比赛谁赢了
怎么快速学好英语
推荐本好看的小说
你是ChatGPT吗
帮我写一封情书
人生的意义是什么
月亮上真的有兔子吗
1234567
🌧️
啦啦啦
帮我查下明天去成都的航班
高考志愿怎么填
感冒了吃什么药
我家路由器的wifi密码忘了
春节一共放几天假
""".strip().splitlines()

EN = """
what's the weather like today
tell me a joke
which stocks should I buy
can you do my homework
asdfghjkl
🤣
what's your name
who won the game last night
recommend a movie
what's the meaning of life
how tall is Mount Everest
sing me a song
write me a poem
what's 17 times 23
I'm bored
are you single
qwertyuiop
lol
huh?!
how do I cook pasta
translate "hello" into French
what time is it in Tokyo
is bitcoin going up
recommend a good book
what should I eat for dinner
how do I lose weight
who is the president of France
blah blah
🍕
can you help me write a cover letter
do you ever dream
my cat keeps knocking things over
""".strip().splitlines()
